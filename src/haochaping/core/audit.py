"""The audit trail: sensitive reads (a revealed phone number or comment) and administrative
acts, each one row in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.core.choices import ChoiceSet
from haochaping.core.models import AuditEvent


class AuditAction(ChoiceSet):
    """What an audit row records (`audit_event.action`), with the label people read."""

    CREATE_USER = "create_user", "创建账号"
    SET_PASSWORD = "set_password", "重设密码"
    DEACTIVATE_USER = "deactivate_user", "停用账号"
    CREATE_CLIENT = "create_client", "创建接入密钥"
    REVOKE_CLIENT = "revoke_client", "吊销接入密钥"
    ROTATE_CLIENT = "rotate_client", "更换接入密钥"
    ASSIGN_USER = "assign_user", "调整账号角色或机构"
    END_SESSIONS = "end_sessions", "结束账号的全部登录"
    CREATE_REGION = "create_region", "新增行政区划"
    UPDATE_REGION = "update_region", "修改行政区划"
    CREATE_ORG = "create_org", "新增机构"
    UPDATE_ORG = "update_org", "修改机构"
    MOVE_ORG = "move_org", "调整机构隶属"
    DEACTIVATE_ORG = "deactivate_org", "停用机构"
    CREATE_STAFF = "create_staff", "新增工作人员"
    UPDATE_STAFF = "update_staff", "修改工作人员"
    DEACTIVATE_STAFF = "deactivate_staff", "停用工作人员"
    SET_STAFF_PHOTO = "set_staff_photo", "更新工作人员照片"
    SET_STAFF_CONSENT = "set_staff_consent", "登记工作人员公开同意"
    CREATE_ITEM = "create_item", "新增服务事项"
    UPDATE_ITEM = "update_item", "修改服务事项"
    DEACTIVATE_ITEM = "deactivate_item", "停用服务事项"
    PUBLISH_POLICY = "publish_policy", "发布政策参数"
    IMPORT_CALENDAR = "import_calendar", "导入工作日历"
    RETRY_MESSAGE = "retry_message", "重发通知"
    CREATE_WEBHOOK = "create_webhook", "订阅工单事件推送"
    DELETE_WEBHOOK = "delete_webhook", "取消工单事件推送"
    REVEAL_PHONE = "reveal_phone", "查看评价人手机号"
    REVEAL_COMMENT = "reveal_comment", "查看评价原文"
    STAFF_IDENTITY_RECORDED = "staff_identity_recorded", "登记工作人员身份信息"
    REGISTER_ADD = "register_add", "列入恶意评价人员信息库"
    REGISTER_REVOKE = "register_revoke", "提前移出恶意评价人员信息库"
    REGISTER_SEARCH = "register_search", "按身份查询恶意评价人员信息库"
    CREATE_APPRAISAL_SCHEME = "create_appraisal_scheme", "发布考核方案"
    ADD_APPRAISAL_ADJUSTMENT = "add_appraisal_adjustment", "登记弹性加减分项"
    ADD_TOPIC_WORD = "add_topic_word", "新增分词词典词语"
    PAIR_PAD = "pair_pad", "生成评价器配对码"
    REVOKE_PAD = "revoke_pad", "停用评价器"
    SET_INSPECTION_CHECKLIST = "set_inspection_checklist", "修改监督查评检查项目"
    DETACH_RATINGS_MONTH = "detach_ratings_month", "分离已归档月份的评价分区"
    ATTACH_RATINGS_MONTH = "attach_ratings_month", "挂回评价月份分区"


def record(
    db: AsyncSession,
    *,
    actor: str,
    actor_role: str | None,
    action: AuditAction,
    target_type: str,
    target_id: int | None,
    detail: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> None:
    """Add one audit row to the unit of work (it commits, or rolls back, with the act)."""
    db.add(
        AuditEvent(
            actor=actor,
            actor_role=actor_role,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail or {},
            source_ip=source_ip,
        )
    )
