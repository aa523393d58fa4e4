"""Domain errors of the workbench services. The web layer maps each class to one HTTP status in one place
(NotFound → 404, PermissionDenied → 403, VersionConflict → 409, InvalidTransition / InvalidEdit → 422 or 409,
UserExists → 409). The names read as outcomes, without an "Error" suffix, because they are that contract.
Messages are Chinese because they are shown to physicians; the attributes carry the details."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by `zhujian.storage` services."""


class NotFound(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    def __init__(self, object_type: str, object_id: object) -> None:
        self.object_type = object_type
        self.object_id = object_id
        super().__init__(f"未找到{_OBJECT_NAMES.get(object_type, object_type)}：{object_id}")


class PermissionDenied(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    """The acting user's role may not do this action (or the user is inactive or unknown)."""

    def __init__(self, action: str, role: str | None, message: str | None = None) -> None:
        self.action = action
        self.role = role
        super().__init__(message or f"当前角色（{role or '无'}）无权执行此操作：{action}")


class SelfReviewForbidden(PermissionDenied):
    """A physician may not review (审核) a report they signed themselves (four-eyes principle)."""

    def __init__(self, role: str | None) -> None:
        super().__init__("review", role, "不能审核本人签署的报告")


class VersionConflict(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    """The report changed since the client read it (optimistic locking); nothing was written."""

    def __init__(self, report_id: int, expected: int, actual: int | None) -> None:
        self.report_id = report_id
        self.expected = expected
        self.actual = actual
        shown = "未知" if actual is None else str(actual)
        super().__init__(f"报告已被他人修改（您编辑的是第 {expected} 版，当前为第 {shown} 版），请刷新后重试")


class InvalidTransition(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    """The report's status does not allow this step (e.g. editing a signed report, publishing an unreviewed one)."""

    def __init__(self, report_id: int, status: str, action: str, message: str) -> None:
        self.report_id = report_id
        self.status = status
        self.action = action
        super().__init__(message)


class InvalidEdit(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    """An edit operation does not fit the report (unknown conclusion id, duplicate, empty name, …)."""

    def __init__(self, message: str, operation_index: int | None = None) -> None:
        self.operation_index = operation_index
        prefix = f"第 {operation_index + 1} 项修改：" if operation_index is not None else ""
        super().__init__(prefix + message)


class UserExists(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"用户名已存在：{username}")


class InvalidUserData(StorageError):  # noqa: N818 - named like the outcome the web layer reports
    """A user field is not acceptable (empty name, short password, unknown role)."""


_OBJECT_NAMES = {"report": "报告", "user": "用户", "person": "受检者", "visit": "体检记录"}
