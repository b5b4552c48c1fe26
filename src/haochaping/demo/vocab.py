"""Chinese vocabulary of the demo province: places, departments, items, names and comments.

Everything here is invented. The province is "示范省" with region codes 99xxxx, which no real
region uses, so demo data can never be mistaken for real people or places.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVINCE = ("990000", "示范省")

# (city code, city name, [(county code, county name, [town names])]); county codes follow the
# national scheme: 02.. districts (区), 2x counties (县), 8x county-level cities (县级市).
CITIES: list[tuple[str, str, list[tuple[str, str, list[str]]]]] = [
    (
        "990100",
        "星湖市",
        [
            ("990102", "明湖区", ["湖滨街道", "文昌街道"]),
            ("990103", "星港区", ["港湾街道", "新河街道"]),
            ("990104", "新城区", ["城东街道", "金桥街道"]),
            ("990121", "青石县", ["青石镇", "柳溪镇"]),
        ],
    ),
    (
        "990200",
        "云岭市",
        [
            ("990202", "云中区", ["云台街道", "凤鸣街道"]),
            ("990203", "岭南区", ["南山街道", "桃源街道"]),
            ("990221", "松溪县", ["松溪镇", "石门镇"]),
            ("990281", "清泉市", ["清泉街道", "龙泉镇"]),
        ],
    ),
    (
        "990300",
        "青禾市",
        [
            ("990302", "禾丰区", ["丰收街道", "禾田街道"]),
            ("990321", "白沙县", ["白沙镇", "双溪镇"]),
            ("990322", "望江县", ["望江镇", "江口镇"]),
        ],
    ),
    (
        "990400",
        "南屿市",
        [
            ("990402", "海屿区", ["海港街道", "屿东街道"]),
            ("990421", "渔港县", ["渔港镇", "东澳镇"]),
            ("990481", "临屿市", ["临屿街道", "长岐镇"]),
        ],
    ),
]


@dataclass(frozen=True, slots=True)
class Department:
    """A kind of government department, named per level (province, city, county)."""

    key: str
    province: str | None  # name suffix at province level; None: no such department there
    city: str
    county: str
    online_share: float  # share of its cases handled online (一网通办)
    business: bool  # mostly enterprises apply


DEPARTMENTS: dict[str, Department] = {
    d.key: d
    for d in [
        Department("scjg", "市场监督管理局", "市场监督管理局", "市场监督管理局", 0.45, True),
        Department("ga", "公安厅", "公安局", "公安分局", 0.12, False),
        Department(
            "rs",
            "人力资源和社会保障厅",
            "人力资源和社会保障局",
            "人力资源和社会保障局",
            0.45,
            False,
        ),
        Department("yb", "医疗保障局", "医疗保障局", "医疗保障局", 0.45, False),
        Department("zr", "自然资源厅", "自然资源和规划局", "自然资源和规划局", 0.2, False),
        Department("gjj", None, "住房公积金管理中心", "住房公积金管理中心", 0.6, False),
        Department("sw", "税务局", "税务局", "税务局", 0.65, True),
        Department("mz", "民政厅", "民政局", "民政局", 0.2, False),
        Department("wj", "卫生健康委员会", "卫生健康委员会", "卫生健康局", 0.3, False),
        Department("jt", "交通运输厅", "交通运输局", "交通运输局", 0.35, True),
        Department("zj", "住房和城乡建设厅", "住房和城乡建设局", "住房和城乡建设局", 0.4, True),
        Department("jy", "教育厅", "教育局", "教育局", 0.4, False),
        Department("wl", "文化和旅游厅", "文化广电旅游局", "文化广电旅游体育局", 0.4, True),
        Department("st", "生态环境厅", "生态环境局", "生态环境分局", 0.5, True),
        Department("cl", None, "残疾人联合会", "残疾人联合会", 0.2, False),
        Department("tyjr", "退役军人事务厅", "退役军人事务局", "退役军人事务局", 0.2, False),
    ]
}


def department_name(dept: Department, level: str, place: str, city: str) -> str:
    """The full name of a department at a level: 星湖市公安局, 国家税务总局明湖区税务局."""
    if dept.key == "gjj" and level == "county":
        return f"{city}住房公积金管理中心{place[:-1]}分中心"
    # County-level cities (县级市) name departments like a city; counties keep their 公安局.
    county_city = level == "county" and (
        place.endswith("市") or (dept.key == "ga" and place.endswith("县"))
    )
    suffix = {
        "province": dept.province,
        "city": dept.city,
        "county": dept.city if county_city else dept.county,
    }[level]
    if dept.key == "sw":
        return f"国家税务总局{place}{suffix}"
    if level == "county" and not county_city and suffix in {"公安分局", "生态环境分局"}:
        return f"{city}{suffix.removesuffix('分局')}局{place}分局"
    return f"{place}{suffix}"


# Kinds of power (事项类型) and the two digits that open the demo basic code.
ITEM_KINDS = {"许可": "01", "给付": "04", "确认": "07", "其他": "10", "公共服务": "20"}


@dataclass(frozen=True, slots=True)
class ItemTemplate:
    """A service item as the catalogue lists it; implemented at the levels named."""

    dept: str
    name: str
    kind: str
    levels: str  # P province, C city, X county, T also at town service centres
    weight: float  # relative demand
    promise_days: int  # 0: immediate (即办件); else the promised working days (承诺件)


ITEMS: list[ItemTemplate] = [
    ItemTemplate(*row)
    for row in [
        # 市场监管
        ("scjg", "企业设立登记（营业执照核发）", "许可", "CX", 30, 1),
        ("scjg", "企业变更登记", "许可", "CX", 15, 1),
        ("scjg", "企业注销登记", "许可", "CX", 7, 3),
        ("scjg", "个体工商户设立登记", "许可", "CXT", 18, 0),
        ("scjg", "个体工商户变更登记", "许可", "CXT", 6, 0),
        ("scjg", "食品经营许可", "许可", "CX", 14, 5),
        ("scjg", "食品经营许可变更", "许可", "CX", 5, 3),
        ("scjg", "食品生产许可", "许可", "C", 3, 10),
        ("scjg", "小餐饮经营登记", "许可", "XT", 4, 0),
        ("scjg", "药品零售企业许可", "许可", "CX", 3, 10),
        ("scjg", "第二类医疗器械经营备案", "其他", "CX", 2, 0),
        ("scjg", "特种设备使用登记", "许可", "CX", 3, 5),
        ("scjg", "营业执照遗失补领", "公共服务", "CX", 2, 0),
        ("scjg", "药品批发企业许可", "许可", "P", 1, 15),
        ("scjg", "工业产品生产许可", "许可", "P", 1, 15),
        # 公安
        ("ga", "户籍迁移（迁入）", "确认", "CXT", 12, 3),
        ("ga", "出生登记", "确认", "XT", 8, 0),
        ("ga", "居民身份证换领", "公共服务", "XT", 20, 0),
        ("ga", "居民身份证补领", "公共服务", "XT", 10, 0),
        ("ga", "临时居民身份证办理", "公共服务", "XT", 4, 0),
        ("ga", "居住证办理", "公共服务", "XT", 6, 0),
        ("ga", "无犯罪记录证明开具", "公共服务", "XT", 6, 0),
        ("ga", "普通护照签发", "许可", "CX", 10, 7),
        ("ga", "往来港澳通行证及签注", "许可", "CX", 12, 7),
        ("ga", "往来台湾通行证及签注", "许可", "CX", 3, 7),
        ("ga", "机动车驾驶证换证", "许可", "CX", 10, 0),
        ("ga", "机动车注册登记", "许可", "C", 6, 0),
        ("ga", "机动车检验合格标志核发", "许可", "CX", 6, 0),
        ("ga", "剧毒化学品购买许可", "许可", "P", 1, 3),
        # 人力社保
        ("rs", "社保卡补换", "公共服务", "CXT", 18, 0),
        ("rs", "社保卡申领", "公共服务", "CXT", 10, 0),
        ("rs", "职工参保登记", "确认", "CX", 8, 0),
        ("rs", "城乡居民养老保险参保登记", "确认", "XT", 6, 0),
        ("rs", "养老保险关系转移接续", "公共服务", "CX", 5, 15),
        ("rs", "失业保险金申领", "给付", "CX", 5, 3),
        ("rs", "退休申请（基本养老金核定）", "给付", "CX", 6, 10),
        ("rs", "就业失业登记", "公共服务", "XT", 6, 0),
        ("rs", "工伤认定", "确认", "CX", 2, 15),
        ("rs", "技能人员职业资格证书补发", "公共服务", "P", 1, 5),
        ("rs", "人力资源服务许可", "许可", "P", 1, 10),
        # 医保
        ("yb", "医保报销（零星报销）", "给付", "CXT", 12, 10),
        ("yb", "异地就医备案", "公共服务", "CXT", 10, 0),
        ("yb", "门诊慢特病待遇认定", "确认", "CXT", 8, 5),
        ("yb", "城乡居民医保参保登记", "确认", "XT", 8, 0),
        ("yb", "医保关系转移接续", "公共服务", "CX", 4, 10),
        ("yb", "生育津贴申领", "给付", "CX", 5, 10),
        ("yb", "定点医药机构申请", "其他", "P", 1, 15),
        # 不动产登记与规划
        ("zr", "不动产登记（首次登记）", "确认", "CX", 5, 5),
        ("zr", "不动产登记（转移登记）", "确认", "CX", 20, 3),
        ("zr", "不动产登记（抵押登记）", "确认", "CX", 12, 2),
        ("zr", "不动产登记（变更登记）", "确认", "CX", 5, 3),
        ("zr", "不动产登记（注销抵押登记）", "确认", "CX", 8, 0),
        ("zr", "不动产权证书补换证", "确认", "CX", 3, 10),
        ("zr", "不动产登记资料查询", "公共服务", "CXT", 8, 0),
        ("zr", "建设用地规划许可", "许可", "C", 1, 10),
        ("zr", "建设工程规划许可", "许可", "CX", 1, 10),
        ("zr", "采矿权登记", "许可", "P", 1, 20),
        # 住房公积金
        ("gjj", "公积金提取（购房）", "给付", "CX", 10, 3),
        ("gjj", "公积金提取（租房）", "给付", "CX", 10, 0),
        ("gjj", "公积金提取（退休）", "给付", "CX", 4, 0),
        ("gjj", "公积金提取（离职）", "给付", "CX", 3, 3),
        ("gjj", "个人住房公积金贷款", "给付", "CX", 6, 10),
        ("gjj", "公积金缴存登记", "公共服务", "CX", 3, 0),
        ("gjj", "公积金异地转移接续", "公共服务", "CX", 2, 5),
        ("gjj", "公积金贷款结清证明开具", "公共服务", "CX", 2, 0),
        # 税务
        ("sw", "发票领用", "其他", "CX", 10, 0),
        ("sw", "税务登记信息确认", "确认", "CX", 4, 0),
        ("sw", "个人所得税综合所得汇算", "其他", "CX", 3, 0),
        ("sw", "契税申报", "其他", "CX", 8, 0),
        ("sw", "完税证明开具", "公共服务", "CXT", 4, 0),
        ("sw", "增值税普通发票代开", "其他", "CXT", 5, 0),
        ("sw", "跨区域涉税事项报告", "其他", "P", 1, 0),
        # 民政
        ("mz", "结婚登记", "确认", "CX", 6, 0),
        ("mz", "离婚登记", "确认", "CX", 2, 30),
        ("mz", "婚姻登记记录证明", "公共服务", "CX", 1, 0),
        ("mz", "最低生活保障申请", "给付", "XT", 3, 30),
        ("mz", "高龄津贴申领", "给付", "XT", 4, 15),
        ("mz", "特困人员救助供养", "给付", "XT", 1, 30),
        ("mz", "社会团体成立登记", "许可", "CX", 1, 20),
        ("mz", "基本殡葬服务费用减免", "给付", "XT", 1, 5),
        ("mz", "全省性社会团体成立登记", "许可", "P", 1, 20),
        # 卫生健康
        ("wj", "出生医学证明补发", "公共服务", "CX", 1, 10),
        ("wj", "医师执业注册", "许可", "CX", 2, 10),
        ("wj", "护士执业注册", "许可", "CX", 2, 10),
        ("wj", "公共场所卫生许可", "许可", "CX", 3, 5),
        ("wj", "医疗机构执业登记", "许可", "CX", 1, 20),
        ("wj", "生育登记", "公共服务", "XT", 4, 0),
        ("wj", "医疗机构执业许可（三级医院）", "许可", "P", 1, 20),
        ("wj", "母婴保健技术服务执业许可", "许可", "P", 1, 15),
        # 交通运输
        ("jt", "道路运输经营许可", "许可", "CX", 2, 10),
        ("jt", "道路运输从业人员从业资格证", "许可", "C", 3, 5),
        ("jt", "网络预约出租汽车驾驶员证", "许可", "C", 2, 10),
        ("jt", "网络预约出租汽车运输证", "许可", "C", 2, 10),
        ("jt", "道路运输证年审", "其他", "CX", 3, 0),
        ("jt", "公路超限运输许可", "许可", "P", 1, 5),
        # 住房和城乡建设
        ("zj", "建筑工程施工许可", "许可", "CX", 2, 5),
        ("zj", "商品房预售许可", "许可", "CX", 1, 10),
        ("zj", "建筑业企业资质（施工总承包三级）", "许可", "C", 1, 20),
        ("zj", "二手房交易资金监管", "公共服务", "CX", 3, 0),
        ("zj", "公共租赁住房申请", "给付", "CX", 3, 20),
        ("zj", "建筑业企业资质（施工总承包一级）", "许可", "P", 1, 20),
        # 教育
        ("jy", "教师资格认定", "许可", "CX", 3, 20),
        ("jy", "民办学校办学许可", "许可", "CX", 1, 30),
        ("jy", "学籍证明开具", "公共服务", "X", 2, 0),
        # 文化旅游
        ("wl", "娱乐场所经营许可", "许可", "CX", 1, 15),
        ("wl", "营业性演出许可", "许可", "CX", 1, 5),
        ("wl", "旅行社设立许可", "许可", "P", 1, 20),
        # 生态环境
        ("st", "排污许可", "许可", "C", 1, 20),
        ("st", "建设项目环境影响评价审批", "许可", "CX", 1, 20),
        # 残联、退役军人
        ("cl", "残疾人证办理", "公共服务", "XT", 3, 15),
        ("cl", "残疾人两项补贴申领", "给付", "XT", 3, 10),
        ("tyjr", "退役军人优待证申领", "公共服务", "XT", 2, 15),
        ("tyjr", "退役士兵安置", "给付", "CX", 1, 30),
    ]
]


@dataclass(frozen=True, slots=True)
class WindowLine:
    """A kind of window in a hall: its label, the departments it serves (None: all) and how
    busy one such window is."""

    label: str
    depts: frozenset[str] | None
    traffic: float
    numbered: bool = True


LINES = {
    line.label: line
    for line in [
        WindowLine("综合受理", None, 1.0),
        WindowLine("企业开办专区", frozenset({"scjg", "sw"}), 1.2),
        WindowLine("公安户政", frozenset({"ga"}), 1.3),
        WindowLine("出入境", frozenset({"ga"}), 0.9),
        WindowLine("社保医保", frozenset({"rs", "yb"}), 1.3),
        WindowLine("不动产登记", frozenset({"zr"}), 1.4),
        WindowLine("公积金", frozenset({"gjj"}), 1.0),
        WindowLine("税务", frozenset({"sw"}), 1.0),
        WindowLine("工程建设项目审批", frozenset({"zj", "zr", "st"}), 0.5),
        WindowLine("交通运输", frozenset({"jt"}), 0.6),
        WindowLine("民政婚姻", frozenset({"mz"}), 0.6),
        WindowLine("卫健", frozenset({"wj"}), 0.5),
        WindowLine("跨省通办", None, 0.3, numbered=False),
        WindowLine("帮办代办", None, 0.2, numbered=False),
        WindowLine("综合出件", None, 0.2, numbered=False),
    ]
}

# Windows per hall kind: (line label, how many).
HALL_LAYOUTS: dict[str, list[tuple[str, int]]] = {
    "province": [
        ("综合受理", 6),
        ("工程建设项目审批", 2),
        ("社保医保", 1),
        ("卫健", 1),
        ("综合出件", 1),
    ],
    "city": [
        ("综合受理", 8),
        ("企业开办专区", 4),
        ("公安户政", 2),
        ("出入境", 3),
        ("社保医保", 4),
        ("公积金", 2),
        ("税务", 2),
        ("工程建设项目审批", 2),
        ("交通运输", 1),
        ("民政婚姻", 1),
        ("卫健", 1),
        ("跨省通办", 1),
        ("帮办代办", 1),
        ("综合出件", 1),
    ],
    "estate": [("不动产登记", 10), ("税务", 3), ("公积金", 2), ("综合出件", 1)],
    "county": [
        ("综合受理", 4),
        ("不动产登记", 3),
        ("企业开办专区", 1),
        ("公安户政", 1),
        ("出入境", 1),
        ("社保医保", 2),
        ("税务", 1),
        ("公积金", 1),
        ("民政婚姻", 1),
        ("帮办代办", 1),
        ("综合出件", 1),
    ],
    "town": [("综合受理", 3), ("社保医保", 1)],
}

# Surnames by rough frequency (the first ones are the commonest).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ["欧阳", "司马", "上官", "诸葛", "东方", "慕容"]
MALE_CHARS = (
    "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国志峰海东文博晨睿轩然"
    "泽铭昊天成毅锋亮瑞德荣宏达庆福永嘉航逸"
)
FEMALE_CHARS = (
    "芳娜敏静丽艳娟霞秀玲桂英燕萍红婷雪琳晶倩颖慧佳欣怡蕾梦瑶雅琪璐悦薇岚洁月莉丹蓉晓诗语涵"
    "思雨梓萱菲宁"
)

COMPANY_BRANDS = [
    "恒达",
    "华盛",
    "鑫源",
    "博远",
    "瑞丰",
    "宏图",
    "金诚",
    "嘉禾",
    "众信",
    "天成",
    "汇通",
    "康泰",
    "永兴",
    "锦程",
    "安捷",
    "云帆",
    "智创",
    "绿源",
    "新航",
    "德润",
    "盛世",
    "东方红",
    "海纳",
    "星辰",
    "润泽",
    "和信",
    "联创",
    "百川",
    "远景",
    "华茂",
]
COMPANY_TRADES = [
    "科技",
    "贸易",
    "建筑工程",
    "餐饮管理",
    "物流",
    "电子商务",
    "医药",
    "文化传媒",
    "农业发展",
    "机械制造",
    "房地产开发",
    "信息技术",
    "教育咨询",
    "食品",
    "商贸",
    "装饰工程",
    "汽车服务",
    "物业管理",
    "环保科技",
    "旅游开发",
]
COMPANY_FORMS = ["有限公司"] * 8 + ["有限责任公司", "股份有限公司"]
INSTITUTIONS = [
    "第一人民医院",
    "中心小学",
    "实验中学",
    "疾病预防控制中心",
    "图书馆",
    "第二人民医院",
    "职业技术学校",
    "社会福利院",
]
SOCIAL_ORGS = [
    "个体劳动者协会",
    "书法家协会",
    "志愿者协会",
    "餐饮行业协会",
    "慈善总会",
    "老年体育协会",
]

# Good comments: the words of people who were pleased.
GOOD_COMMENTS = {
    5: [
        "办事效率高，点赞！",
        "工作人员很耐心，讲解得很清楚",
        "一次就办好了，不用来回跑",
        "材料齐全十几分钟就办完了",
        "服务热情周到",
        "比以前方便多了",
        "网上提交后很快就审核通过了",
        "窗口小姐姐态度特别好",
        "流程清晰，指引到位",
        "帮办代办很贴心",
        "手机上就办好了，非常方便",
        "不用排队，预约后直接办理",
        "非常满意，谢谢！",
        "老人办事有专人引导，很暖心",
    ],
    4: [
        "整体不错",
        "办得挺快的",
        "服务态度好",
        "还行，就是取号等了一会儿",
        "满意，希望继续保持",
        "工作人员业务熟练",
    ],
    3: [
        "还可以，排队时间有点长",
        "基本满意，希望能再快一点",
        "材料要求说明得不够清楚",
        "一般吧，停车不太方便",
        "办是办成了，就是等得久",
        "大厅人太多了",
    ],
}

# Bad comments by reason code: what a dissatisfied person writes next to that reason.
BAD_COMMENTS = {
    "207": ["没有样表，填错了好几次", "表格不知道怎么填，也没人给看样本"],
    "208": ["没有一次性告诉要带什么材料", "材料清单上没写清楚，又跑了一趟"],
    "209": ["说好五个工作日，半个月了还没办结", "承诺时间早就过了，一直说在审核"],
    "210": ["同样的证明交了三次", "户口本复印件每个窗口都要一份"],
    "211": ["网上说能办，结果系统一直提交不了", "网上申报页面一直报错"],
    "212": ["网上预约了到现场还要重新排队取号", "预约了也没用，照样排了一个多小时"],
    "213": ["窗口人员对政策不熟，问了半天说不清楚", "工作人员业务不熟练，办得很慢"],
    "214": ["窗口人员态度生硬，问两句就不耐烦", "说话很冲，爱答不理"],
    "108": ["办事指南上没写的条件也要求满足", "临时加了条件，不给办"],
    "109": ["办事指南上没写要这个证明", "要开各种证明，指南里根本没有"],
    "110": ["超过法定时限一个多月了还没结果", "拖了很久也没人解释原因"],
    "111": ["按样本填的，结果说样本是错的", "样表和实际要求对不上"],
    "112": ["说可以网上交材料，结果收不了，只能跑现场", "网上上传一直失败，只能跑现场"],
    "113": ["跑了好几个窗口、好几个部门才办成", "被推来推去，窗口之间互相推诿"],
    "114": ["说最多跑一次，实际跑了四次", "承诺跑一次，来回跑了三趟"],
    "115": ["态度差效率低，等了一上午", "工作人员玩手机，让我们干等"],
}
GENERIC_BAD_COMMENTS = ["太麻烦了", "很不满意", "体验很差，希望改进", "等了太久"]

# What inspectors (监督查评) note: findings by reason code for bad ratings, remarks for good.
INSPECTION_FINDINGS = {
    "207": ["窗口未公示办事指南和材料样本"],
    "208": ["一次性告知不到位，群众反复补材料"],
    "213": ["窗口人员对业务不熟悉，答复不准确"],
    "214": ["服务用语不规范，态度生硬"],
    "113": ["群众在窗口之间被来回指引，首问负责未落实"],
    "115": ["暗访发现窗口人员脱岗", "叫号后长时间无人受理", "工作时间内办理私事"],
}
INSPECTION_REMARKS = [
    "窗口人员着装规范，服务用语文明",
    "一次性告知到位，台账齐全",
    "帮办代办服务落实较好",
    "自助服务区运行正常，引导到位",
]

MOBILE_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger",
    "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 AlipayClient",
    "Mozilla/5.0 (Linux; Android 13; PHB110) AppleWebKit/537.36 zlb-app",
]
PC_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Edg/120.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15",
]

# First day of the Spring Festival (春节) per year: the holiday week shapes the volume curve.
SPRING_FESTIVAL = {
    2024: (2, 10),
    2025: (1, 29),
    2026: (2, 17),
    2027: (2, 6),
    2028: (1, 26),
    2029: (2, 13),
    2030: (2, 3),
}
