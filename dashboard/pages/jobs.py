"""Jobs: a live table of training and scoring jobs; cancel and retry without reloading."""

from __future__ import annotations

import logging
import time

import pandas as pd
import streamlit as st

from dashboard import context
from dashboard.services import jobs as job_service
from dashboard.services import worker_status
from dashboard.services.errors import StoreError

logger = logging.getLogger(__name__)

NOTICE_KEY = "adn_jobs_notice"
NOTICE_SHOWN_S = 60.0
REFRESH_S = 2


def notify(kind: str, text: str) -> None:
    """Remember the outcome of a cancel or retry; it stays visible for a minute."""
    st.session_state[NOTICE_KEY] = (kind, text, time.monotonic())


def status_text(row: job_service.JobRow, waiting: dict[str, str]) -> str:
    """The status column: the status, and why a queued job is not moving when nobody takes it."""
    if row.cancel_requested and row.status == "running":
        return f"{row.status} (stopping)"
    if row.status == "queued" and row.kind in waiting:
        return f"queued: {worker_status.nobody_listens(row.kind)}"
    return row.status


def jobs_frame(rows: list[job_service.JobRow], waiting: dict[str, str]) -> pd.DataFrame:
    """The live table's rows; ``waiting`` maps a job kind to why nobody takes it."""
    return pd.DataFrame(
        [
            {
                "job": r.id,
                "status": status_text(r, waiting),
                "progress": r.progress,
                "message": r.message or "",
                "kind": r.kind,
                "model": r.model or "",
                "by": r.created_by or "system",
                "created": r.created_at,
                "started": r.started_at,
                "finished": r.finished_at,
                "attempts": r.attempts,
                "error": r.error or "",
            }
            for r in rows
        ]
    )


COLUMNS = {
    "job": st.column_config.NumberColumn("job", format="%d", width="small"),
    "progress": st.column_config.ProgressColumn(
        "progress", min_value=0.0, max_value=1.0, format="percent"
    ),
    "message": st.column_config.TextColumn("message", width="large"),
    "created": st.column_config.DatetimeColumn("created", format="MM-DD HH:mm:ss"),
    "started": st.column_config.DatetimeColumn("started", format="MM-DD HH:mm:ss"),
    "finished": st.column_config.DatetimeColumn("finished", format="MM-DD HH:mm:ss"),
    "error": st.column_config.TextColumn("error", width="large"),
}


def _cancel_selected() -> None:
    """Button callback: cancel the job chosen in the cancel picker."""
    job_id = st.session_state.get("adn_cancel_pick")
    if job_id is None:
        return
    try:
        status = job_service.cancel_job(
            context.session_factory(), int(job_id), actor_id=context.actor_id()
        )
    except StoreError as exc:
        notify("error", f"Could not cancel job {job_id}: {exc}")
        return
    if status == "cancelled":
        notify("success", f"Job {job_id} cancelled.")
    else:
        text = f"Job {job_id} asked to stop; its worker stops it shortly."
        notify("success", text)


def _retry_selected() -> None:
    """Button callback: queue the job chosen in the retry picker again, then send it."""
    job_id = st.session_state.get("adn_retry_pick")
    if job_id is None:
        return
    try:
        sent = job_service.retry_job(
            context.session_factory(), int(job_id), actor_id=context.actor_id()
        )
    except StoreError as exc:
        notify("error", f"Could not retry job {job_id}: {exc}")
        return
    if sent.sent:
        notify("success", f"Job {job_id} queued again as job {sent.job_id}.")
    else:
        notify("error", f"Job {sent.job_id} is saved. {sent.problem}")


def _job_label(row: job_service.JobRow) -> str:
    return f"#{row.id} {row.kind} · {row.model or 'no model'} · {row.status}"


def cancel_control(rows: list[job_service.JobRow]) -> None:
    """Cancel a queued or running job."""
    active = {r.id: r for r in rows if r.can_cancel}
    if not active:
        st.caption("No queued or running job to cancel.")
        return
    st.selectbox(
        "Job to cancel",
        list(active),
        format_func=lambda j: _job_label(active[j]) if j in active else f"#{j}",
        key="adn_cancel_pick",
    )
    st.button(
        "Cancel job", key="adn_cancel_job", icon=":material/cancel:", on_click=_cancel_selected
    )


def retry_control(rows: list[job_service.JobRow]) -> None:
    """Queue a failed or cancelled job again with the same parameters."""
    finished = {r.id: r for r in rows if r.can_retry}
    if not finished:
        st.caption("No failed or cancelled job to retry.")
        return
    st.selectbox(
        "Job to retry",
        list(finished),
        format_func=lambda j: _job_label(finished[j]) if j in finished else f"#{j}",
        key="adn_retry_pick",
    )
    st.button("Retry job", key="adn_retry_job", icon=":material/replay:", on_click=_retry_selected)


def show_notice() -> None:
    """The result of the last cancel or retry."""
    notice = st.session_state.get(NOTICE_KEY)
    if notice and time.monotonic() - notice[2] < NOTICE_SHOWN_S:
        kind, text, _ = notice
        (st.error if kind == "error" else st.success)(text)


@st.fragment(run_every=REFRESH_S)
def live_jobs(project_id: int, statuses: list[str], kind: str | None) -> None:
    """The job table and its controls; refreshes itself every few seconds."""
    rows = job_service.job_rows(
        context.session_factory(), project_id=project_id, statuses=statuses, kind=kind
    )
    running = sum(1 for r in rows if r.status == "running")
    queued = sum(1 for r in rows if r.status == "queued")
    cols = st.columns(3)
    cols[0].metric("Running", running)
    cols[1].metric("Queued", queued)
    cols[2].metric("Shown", len(rows))
    show_notice()
    reports = worker_status.read_reports(context.store_settings().data_dir)
    waiting = {
        k: text
        for k in {r.kind for r in rows if r.status == "queued"}
        if (text := worker_status.queue_problem(reports, k)) is not None
    }
    for text in sorted(set(waiting.values())):
        st.warning(text, icon=":material/engineering:")
    if not rows:
        st.info("No job matches. Queue training or scoring on the **Train** page.")
    else:
        st.dataframe(
            jobs_frame(rows, waiting), hide_index=True, width="stretch", column_config=COLUMNS
        )
        failed = [r for r in rows if r.status == "failed" and r.error]
        if failed:
            with st.expander(f"Why {len(failed)} job(s) failed"):
                for r in failed:
                    st.markdown(f"**Job {r.id}** ({r.kind}, {r.model or 'no model'})")
                    st.code(r.error, language=None)
    if not context.can("reviewer"):
        return
    left, right = st.columns(2)
    with left:
        cancel_control(rows)
    with right:
        retry_control(rows)


def render() -> None:
    """The Jobs page."""
    st.title("Jobs")
    project_id = context.require_project()
    cols = st.columns(2)
    statuses = cols[0].multiselect(
        "Status",
        job_service.STATUSES,
        default=[],
        placeholder="all statuses",
        key="adn_jobs_status",
    )
    kind = cols[1].selectbox(
        "Kind",
        [None, *job_service.KINDS],
        format_func=lambda k: k or "all kinds",
        key="adn_jobs_kind",
    )
    live_jobs(project_id, list(statuses), kind)


render()
