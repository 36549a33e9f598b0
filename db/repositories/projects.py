"""Projects: create, list, get."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import ConflictError, NotFoundError
from db.models import Project, Role, User
from db.repositories._common import clean_name, clean_optional, get_or_raise
from db.repositories.audit import record_audit
from db.roles import require_role


def create_project(
    session: Session,
    *,
    name: str,
    description: str | None = None,
    actor: User | None = None,
) -> Project:
    """Create a project with a unique name (reviewers and admins when `actor` is given)."""
    if actor is not None:
        require_role(actor, Role.REVIEWER, action="create projects")
    cleaned = clean_name("project name", name, max_length=128)
    taken = ConflictError(f"a project named {cleaned!r} already exists; choose another name.")
    if get_project_by_name(session, cleaned) is not None:
        raise taken
    project = Project(
        name=cleaned,
        description=clean_optional(description, max_length=10_000, what="description"),
        created_by=actor.id if actor is not None else None,
    )
    try:
        with session.begin_nested():
            session.add(project)
    except IntegrityError:
        raise taken from None
    record_audit(
        session,
        action="project.create",
        entity_type="project",
        entity_id=project.id,
        user=actor,
        details={"name": cleaned},
    )
    return project


def get_project(session: Session, project_id: int) -> Project:
    """The project with this id, or `NotFoundError`."""
    return get_or_raise(session, Project, project_id, "project")


def get_project_by_name(session: Session, name: str) -> Project | None:
    """The project with exactly this name, or None."""
    return session.scalars(select(Project).where(Project.name == name.strip())).one_or_none()


def require_project_by_name(session: Session, name: str) -> Project:
    """The project with this name, or `NotFoundError`."""
    project = get_project_by_name(session, name)
    if project is None:
        raise NotFoundError("project", name)
    return project


def list_projects(session: Session) -> list[Project]:
    """All projects ordered by name."""
    return list(session.scalars(select(Project).order_by(Project.name)))
