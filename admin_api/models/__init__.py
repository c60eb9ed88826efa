"""SQLModel tables and the schemas the API reads and writes, one module per resource.

Tables hold what the database stores; ``*Create``/``*Read`` schemas say what a client may send
and what it gets back, so a new column never leaks into or out of the API by accident. The
learning loop's tables live in ``learning.models`` and the audit log's in ``common.audit``;
they are re-exported here so that the API and its migrations see every table in one place.
"""

from __future__ import annotations

from admin_api.models.answers import Answer as Answer
from admin_api.models.answers import AnswerChanges as AnswerChanges
from admin_api.models.answers import AnswerClock as AnswerClock
from admin_api.models.answers import AnswerRead as AnswerRead
from admin_api.models.answers import AnswerRevision as AnswerRevision
from admin_api.models.answers import AnswerRevisionRead as AnswerRevisionRead
from admin_api.models.answers import AnswerTombstone as AnswerTombstone
from admin_api.models.answers import AnswerUpdate as AnswerUpdate
from admin_api.models.answers import ImportReport as ImportReport
from admin_api.models.audit import AuditEntryRead as AuditEntryRead
from admin_api.models.console import CannedReply as CannedReply
from admin_api.models.console import ConsoleSession as ConsoleSession
from admin_api.models.console import HandoffClaim as HandoffClaim
from admin_api.models.feedback import _ID_PATTERN as _ID_PATTERN
from admin_api.models.feedback import Feedback as Feedback
from admin_api.models.feedback import FeedbackCreate as FeedbackCreate
from admin_api.models.feedback import FeedbackDetail as FeedbackDetail
from admin_api.models.feedback import FeedbackRead as FeedbackRead
from admin_api.models.feedback import FeedbackStatus as FeedbackStatus
from admin_api.models.feedback import Rating as Rating
from admin_api.models.inbox import AssignIntent as AssignIntent
from admin_api.models.inbox import LinkAnswer as LinkAnswer
from admin_api.models.inbox import ReviewItem as ReviewItem
from admin_api.models.inbox import ReviewItemRead as ReviewItemRead
from admin_api.models.inbox import ReviewReason as ReviewReason
from admin_api.models.inbox import ReviewRepeat as ReviewRepeat
from admin_api.models.jobs import JobCreate as JobCreate
from admin_api.models.jobs import JobDetail as JobDetail
from admin_api.models.jobs import JobRead as JobRead
from admin_api.models.leases import Lease as Lease
from admin_api.models.meta import Meta as Meta
from admin_api.models.proposals import AnswerProposal as AnswerProposal
from admin_api.models.proposals import ProposalStatus as ProposalStatus
from admin_api.models.registry import ModelDetail as ModelDetail
from admin_api.models.registry import ModelRead as ModelRead
from admin_api.models.registry import WatchRead as WatchRead
from admin_api.models.registry import WatchUpdate as WatchUpdate
from admin_api.models.thresholds import ChangedTurn as ChangedTurn
from admin_api.models.thresholds import DecisionThresholds as DecisionThresholds
from admin_api.models.thresholds import Outcomes as Outcomes
from admin_api.models.thresholds import ReplayCreate as ReplayCreate
from admin_api.models.thresholds import ReplayTurn as ReplayTurn
from admin_api.models.thresholds import SimulationAsk as SimulationAsk
from admin_api.models.thresholds import SimulationRead as SimulationRead
from admin_api.models.thresholds import ThresholdPair as ThresholdPair
from admin_api.models.thresholds import ThresholdSetting as ThresholdSetting
from admin_api.models.thresholds import ThresholdsRead as ThresholdsRead
from admin_api.models.thresholds import ThresholdsUpdate as ThresholdsUpdate
from admin_api.models.training import BULK_MAX as BULK_MAX
from admin_api.models.training import ExampleBulkResult as ExampleBulkResult
from admin_api.models.training import ExampleBulkReview as ExampleBulkReview
from admin_api.models.training import TrainingExampleCreate as TrainingExampleCreate
from admin_api.models.training import TrainingExampleRead as TrainingExampleRead
from admin_api.models.turn_facts import TurnFact as TurnFact
from admin_api.models.users import _NAME_PATTERN as _NAME_PATTERN
from admin_api.models.users import ApiToken as ApiToken
from admin_api.models.users import Role as Role
from admin_api.models.users import TokenCreate as TokenCreate
from admin_api.models.users import TokenIssued as TokenIssued
from admin_api.models.users import TokenRead as TokenRead
from admin_api.models.users import User as User
from admin_api.models.users import UserCreate as UserCreate
from admin_api.models.users import UserRead as UserRead
from admin_api.models.users import UserUpdate as UserUpdate
from common.audit import AuditEntry as AuditEntry
from common.db import DB_ID_MAX as DB_ID_MAX
from common.db import utcnow as utcnow
from learning.models import FINISHED_JOB_STATUSES as FINISHED_JOB_STATUSES
from learning.models import ExampleSource as ExampleSource
from learning.models import ExampleStatus as ExampleStatus
from learning.models import Job as Job
from learning.models import JobStatus as JobStatus
from learning.models import ModelStatus as ModelStatus
from learning.models import ModelVersion as ModelVersion
from learning.models import TrainingExample as TrainingExample
from retrieval.answers import AnswerStatus as AnswerStatus
