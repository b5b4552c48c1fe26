"""The registry of every table: imports each model module so that the metadata is complete
(Alembic, tests). It sits above the domains, like `app.py`, so that `db` stays below them."""

from haochaping.accounts import models as accounts_models  # noqa: F401
from haochaping.analytics import models as analytics_models  # noqa: F401
from haochaping.appeals import models as appeals_models  # noqa: F401
from haochaping.appraisal import models as appraisal_models  # noqa: F401
from haochaping.cases import models as cases_models  # noqa: F401
from haochaping.core import calendar_models  # noqa: F401
from haochaping.core import models as core_models  # noqa: F401
from haochaping.core import outbox_models as core_outbox_models  # noqa: F401
from haochaping.db.base import Base
from haochaping.evaluations import models as evaluations_models  # noqa: F401
from haochaping.evaluations import standing as evaluations_standing  # noqa: F401
from haochaping.exchange import models as exchange_models  # noqa: F401
from haochaping.inspections import models as inspections_models  # noqa: F401
from haochaping.integrity import models as integrity_models  # noqa: F401
from haochaping.ledger import models as ledger_models  # noqa: F401
from haochaping.orgs import models as orgs_models  # noqa: F401
from haochaping.pads import models as pads_models  # noqa: F401
from haochaping.policies import models as policies_models  # noqa: F401
from haochaping.reports import models as reports_models  # noqa: F401
from haochaping.topics import models as topics_models  # noqa: F401
from haochaping.workorders import models as workorders_models  # noqa: F401

metadata = Base.metadata
