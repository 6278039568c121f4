"""The SQLAlchemy models; importing this package registers every table on `Base.metadata`."""

from web.models.ledger import (
    IdempotencyKey,
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerLink,
    LedgerTransfer,
    MarketItem,
    MarketOrder,
    MarketOrderLine,
    PointLot,
    PointsRuleVersion,
    StockCount,
    StockCountLine,
    StockMovement,
)
from web.models.lists import Category, DemandItem, MicroWish, ResourceItem, resource_service_areas
from web.models.matching import MatchProposal, MatchRun, VolunteerProposal
from web.models.operations import (
    CalendarDay,
    DailyFigures,
    Delivery,
    JobRun,
    Notification,
    NotificationSettings,
    SchedulerJob,
)
from web.models.people import ApiToken, Pairing, Role, RoleGrant, Unit, UnitType, User
from web.models.places import Building, Community, Estate, Grid, Subdistrict
from web.models.volunteers import (
    ActivitySession,
    PostClaim,
    ServicePost,
    SessionSignup,
    TeamMember,
    VolunteerProfile,
    VolunteerTeam,
)
from web.models.work import Assignment, AuditEvent, ReportVolunteer, ServiceRecord, WorkReport

__all__ = [
    "ApiToken", "Assignment", "AuditEvent", "Building", "Category", "Community", "DemandItem",
    "Estate", "Grid", "MatchProposal", "MatchRun", "MicroWish", "Pairing", "ReportVolunteer", "ResourceItem", "Role",
    "RoleGrant", "ServiceRecord", "Subdistrict", "Unit", "UnitType", "User", "WorkReport",
    "resource_service_areas", "IdempotencyKey", "LedgerAccount", "LedgerEntry", "LedgerHead", "LedgerLink",
    "LedgerTransfer", "MarketItem", "MarketOrder", "MarketOrderLine", "PointLot",
    "PointsRuleVersion", "StockCount", "StockCountLine", "StockMovement", "ActivitySession",
    "PostClaim", "ServicePost", "SessionSignup", "TeamMember", "VolunteerProfile",
    "VolunteerTeam", "VolunteerProposal", "CalendarDay", "DailyFigures", "Delivery", "JobRun",
    "Notification", "NotificationSettings", "SchedulerJob",
]
