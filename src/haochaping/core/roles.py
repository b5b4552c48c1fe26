"""Who acts: one `Role` enum for people and for the work-order workflow's other actors.

People hold one of `PERSON_ROLES` (stored in `app_user.role`, offered in forms). The
workflow actors (`WORKFLOW_ACTORS`) never sign in: the deadline job, the rater through their
link, and a held rating's review acting on the order; the state machine
(`workorders/states.py`) names them in its table of who may take each action.
"""

from __future__ import annotations

from haochaping.core.choices import ChoiceSet


class Role(ChoiceSet):
    # People (accounts).
    ADMIN = "admin", "系统管理员"
    OFFICE = "office", "政务服务管理机构"
    UNIT = "unit", "责任单位"  # the handler of a rating's work order
    STAFF = "staff", "窗口人员"
    ASSESSOR = "assessor", "监督查评人员"  # 监督查评 / 第三方评估
    # Workflow actors: never an account's role.
    SYSTEM = "system", "系统（期限任务）"  # the deadline job
    CITIZEN = "citizen", "评价人"  # the rater, through their link
    # A held rating's review (integrity flags, the malicious-rater register) acting on the
    # order; never offered on the work-order page or its action route.
    REVIEW = "review", "复核"


PERSON_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.OFFICE, Role.UNIT, Role.STAFF, Role.ASSESSOR)
WORKFLOW_ACTORS: tuple[Role, ...] = (Role.SYSTEM, Role.CITIZEN, Role.REVIEW)

# Named groups of people, used by the typed dependencies and the services' checks.
MANAGERS = frozenset({Role.ADMIN, Role.OFFICE})  # management offices and administrators
HANDLERS = MANAGERS | {Role.UNIT}  # who handles a bad rating's work order
INVITERS = HANDLERS | {Role.STAFF}  # who may send a rating invitation
# Who reads the statistics pages (数据看板, 榜单), each within their own area: offices and
# administrators, a unit for its subtree, an assessor for its region (read-only).
STATS_READERS = HANDLERS | {Role.ASSESSOR}
# Who reads the statistics of their organisation's whole region rather than of their
# subtree (a leaf third-party assessor still sees every unit of its region), and writes
# nothing there: `Principal.region_path`, docs/metrics.md "What counts".
REGION_READERS = frozenset({Role.ASSESSOR})
# The appraisal (考核, issue 12): assessors keep the schemes and bonus items, offices read
# their region's.
APPRAISERS = frozenset({Role.ASSESSOR})
APPRAISAL_READERS = APPRAISERS | {Role.OFFICE}
# 监督查评 (issue 13): the assessor (监督查评人员) records inspection visits to the units of
# their subtree; offices and administrators read the visits of theirs and keep the region's
# checklist of inspection items.
INSPECTORS = frozenset({Role.ASSESSOR})
INSPECTION_READERS = INSPECTORS | MANAGERS


def person_choices() -> list[tuple[str, str]]:
    """(value, label) of the roles an account may hold, for forms."""
    return [(r.value, r.label) for r in PERSON_ROLES]
