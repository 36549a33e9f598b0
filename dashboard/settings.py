"""Dashboard layout settings: which pages exist, in which section, for which role."""

from __future__ import annotations

from dataclasses import dataclass

from db.models import ROLE_RANK


@dataclass(frozen=True)
class PageSpec:
    """One page of the navigation: ``pages/<stem>.py`` under ``section``."""

    section: str
    stem: str
    title: str
    icon: str
    min_role: str = "viewer"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("Data", "projects", "Projects & upload", ":material/folder_open:"),
    PageSpec("Models", "train", "Train", ":material/model_training:"),
    PageSpec("Models", "jobs", "Jobs", ":material/pending_actions:"),
    PageSpec("Models", "compare", "Compare", ":material/compare:"),
    PageSpec("Review", "review", "Review", ":material/fact_check:"),
    PageSpec("Review", "thresholds", "Thresholds", ":material/tune:"),
    PageSpec("Review", "drift", "Drift", ":material/trending_up:"),
    PageSpec("Export", "export", "Export", ":material/download:"),
    PageSpec("Admin", "users", "Users", ":material/group:", "admin"),
)
DEFAULT_PAGE = "projects"
SIGN_IN = PageSpec("", "sign_in", "Sign in", ":material/login:")


def pages_for(role: str) -> dict[str, list[PageSpec]]:
    """The navigation sections (in order) and pages a user with ``role`` may open."""
    rank = ROLE_RANK.get(role, -1)
    sections: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if rank >= ROLE_RANK[spec.min_role]:
            sections.setdefault(spec.section, []).append(spec)
    return sections
