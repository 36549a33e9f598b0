"""Projects & upload: create a project, upload batches (files or zips), browse their images."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard import context
from dashboard.services import projects as project_service
from dashboard.services import uploads
from dashboard.services.errors import StoreError
from dashboard.services.text import display_name, short_name

logger = logging.getLogger(__name__)

RESULT_KEY = "adn_upload_result"
PER_PAGE = 24
GRID_COLUMNS = 6
LISTED_REJECTS = 10


@st.cache_data(max_entries=5000, show_spinner=False)
def cached_thumbnail(sha256: str, _path: str) -> bytes | None:
    """Thumbnail PNG of an image, cached by content hash (the path is not part of the key)."""
    from pathlib import Path

    return project_service.thumbnail_png(Path(_path))


def create_project_form() -> None:
    """Create a project (reviewers and admins)."""
    with st.expander("Create a project", expanded=context.selected_project() is None):
        if not context.can("reviewer"):
            st.caption("Viewers cannot create projects.")
            return
        with st.form("create_project", clear_on_submit=True):
            name = st.text_input("Project name", placeholder="e.g. Bottle caps, line 3")
            description = st.text_area("Description (optional)", height=80)
            if not st.form_submit_button("Create project", type="primary"):
                return
        try:
            row = project_service.new_project(
                context.session_factory(),
                name=name,
                description=description,
                actor_id=context.actor_id(),
            )
        except StoreError as exc:
            st.error(f"Could not create the project: {exc}")
            return
        context.select_project(row.id)
        st.session_state["adn_projects_notice"] = f"Project {row.name!r} created and selected."
        st.rerun()


def upload_form(project_id: int) -> None:
    """Upload a batch: purpose, name, category, label source and the files themselves."""
    st.subheader("Upload a batch")
    if not context.can("reviewer"):
        st.info("Viewers can browse batches and images but cannot upload.")
        return
    purpose = st.radio(
        "Batch purpose",
        list(project_service.PURPOSE_LABELS),
        format_func=lambda p: project_service.PURPOSE_LABELS[p],
        horizontal=True,
        key="adn_upload_purpose",
    )
    label_kind = st.radio(
        "Known labels",
        list(uploads.LABEL_SOURCES),
        format_func=lambda k: uploads.LABEL_SOURCES[k],
        horizontal=True,
        key="adn_upload_labels",
    )
    settings = context.store_settings()
    with st.form("upload_batch", clear_on_submit=True):
        cols = st.columns(2)
        batch_name = cols[0].text_input("Batch name", placeholder="e.g. line 3, Monday")
        category = cols[1].text_input(
            "Category (optional)", help="Used for files whose labels give no category."
        )
        csv_file = None
        if label_kind == uploads.LABELS_CSV:
            csv_file = st.file_uploader("Label CSV (filename,label[,category])", type=["csv"])
        files = st.file_uploader(
            "Images or zip files",
            accept_multiple_files=True,
            help=(
                f"PNG, JPEG, BMP, TIFF... up to {settings.max_file_mb} MB and "
                f"{settings.max_pixels:,} pixels each, at least {settings.min_image_side} pixels "
                f"a side; zips up to {settings.max_upload_mb} MB; at most "
                f"{settings.max_files_per_batch:,} files per batch. Zips keep their folders "
                "(for MVTec labels)."
            ),
        )
        submitted = st.form_submit_button("Upload batch", type="primary")
    if submitted:
        ingest(project_id, purpose, label_kind, batch_name, category, csv_file, files or [])


def ingest(
    project_id: int,
    purpose: str,
    label_kind: str,
    batch_name: str,
    category: str,
    csv_file: UploadedFile | None,
    files: Sequence[UploadedFile],
) -> None:
    """Ingest the submitted files with a per-file progress bar; remember the result."""
    if not files:
        st.error("No files chosen: add images or zip files, then press Upload batch.")
        return
    try:
        labels = uploads.label_source(
            label_kind,
            csv_file.getvalue() if csv_file is not None else None,
        )
    except StoreError as exc:
        st.error(
            f"The label file cannot be used: {exc}. Nothing was uploaded; pick the files again."
        )
        return
    bar = st.progress(0.0, text="Starting upload...")

    def progress(done: int, total: int, name: str) -> None:
        text = f"{done}/{total} files · {name}" if name else f"{total}/{total} files · done"
        bar.progress(min(1.0, done / max(total, 1)), text=text)

    items = [uploads.UploadedItem(f.name, f.getvalue()) for f in files]
    try:
        result = uploads.upload_batch(
            context.session_factory(),
            settings=context.store_settings(),
            project_id=project_id,
            batch_name=batch_name,
            purpose=purpose,
            files=items,
            labels=labels,
            category=category,
            actor_id=context.actor_id(),
            progress=progress,
        )
    except StoreError as exc:
        bar.empty()
        st.error(f"Nothing was uploaded: {exc}. Fix this and pick the files again.")
        return
    st.session_state[RESULT_KEY] = {
        "project_id": project_id,
        "batch": result.batch_name,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "rows": result.table(),
        "kept": result.batch_id is not None,
        "unused_label_rows": result.unused_label_rows,
        "unlabelled_files": result.unlabelled_files,
    }


def show_result(project_id: int) -> None:
    """The per-file results of the last upload into this project in this browser session."""
    result = st.session_state.get(RESULT_KEY)
    if not result or result.get("project_id") != project_id:
        return
    st.subheader(f"Upload into batch {result['batch']!r}")
    cols = st.columns(3)
    cols[0].metric("Accepted", result["accepted"])
    cols[1].metric("Duplicates", result["duplicates"])
    cols[2].metric("Rejected", result["rejected"])
    if not result.get("kept", True):
        st.info(
            "Nothing new was stored (every file was a duplicate or was rejected), so no batch "
            f"{result['batch']!r} was created."
        )
    label_gaps(result.get("unused_label_rows", []), result.get("unlabelled_files", []))
    if result["rejected"]:
        rejected = [r for r in result["rows"] if r["result"] == "rejected"]
        lines = "\n".join(f"- `{r['file']}`: {r['reason']}" for r in rejected[:LISTED_REJECTS])
        more = len(rejected) - LISTED_REJECTS
        if more > 0:
            lines += f"\n- ... and {more} more (see the table)"
        st.warning(
            f"{result['rejected']} file(s) were rejected; everything else was stored.\n\n{lines}"
        )
    st.dataframe(
        pd.DataFrame(result["rows"]),
        hide_index=True,
        width="stretch",
        column_config={"image id": st.column_config.NumberColumn("image id", format="%d")},
    )


def _listed(names: list[str]) -> str:
    lines = "\n".join(f"- `{display_name(n)}`" for n in names[:LISTED_REJECTS])
    more = len(names) - LISTED_REJECTS
    return lines + (f"\n- ... and {more} more" if more > 0 else "")


def label_gaps(unused_rows: list[str], unlabelled: list[str]) -> None:
    """Warn about label-CSV rows that matched no file and files the CSV has no row for."""
    if unused_rows:
        st.warning(
            f"{len(unused_rows)} row(s) of the label CSV name no uploaded file (a typo, or a "
            f"file left out of the upload):\n\n{_listed(unused_rows)}"
        )
    if unlabelled:
        st.warning(
            f"{len(unlabelled)} uploaded file(s) have no row in the label CSV and were stored "
            f"without a known label:\n\n{_listed(unlabelled)}"
        )


def batches_section(project_id: int) -> list[project_service.BatchRow]:
    """The project's batches: purpose, counts, who, when."""
    rows = project_service.batches(context.session_factory(), project_id)
    st.subheader("Batches")
    if not rows:
        st.info("No batch yet. Upload normal training images and images to inspect above.")
        return rows
    frame = pd.DataFrame(
        [
            {
                "batch": display_name(b.name),
                "purpose": project_service.PURPOSE_LABELS.get(b.purpose, b.purpose),
                "images": b.images,
                "files": b.file_count,
                "accepted": b.accepted,
                "duplicates": b.duplicates,
                "rejected": b.rejected,
                "by": b.created_by or "system",
                "created": b.created_at,
            }
            for b in rows
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm")
        },
    )
    return rows


def thumbnail_grid(project_id: int, rows: list[project_service.BatchRow]) -> None:
    """A paged grid of thumbnails of one chosen batch."""
    if not rows:
        return
    st.subheader("Images")
    by_id = {b.id: b for b in rows}
    cols = st.columns([3, 1])
    batch_id = cols[0].selectbox(
        "Batch", list(by_id), format_func=lambda b: by_id[b].label, key="adn_grid_batch"
    )
    pages = project_service.page_count(by_id[batch_id].images, PER_PAGE)
    page = int(
        cols[1].number_input(
            "Page", min_value=1, max_value=pages, value=1, key=f"adn_grid_page_{batch_id}"
        )
    )
    tiles, total = project_service.image_tiles(
        context.session_factory(),
        context.store_settings().data_dir,
        project_id=project_id,
        batch_id=batch_id,
        page=page,
        per_page=PER_PAGE,
    )
    if not tiles:
        st.caption("This batch has no stored images.")
        return
    st.caption(f"Page {page} of {pages} · {total} images")
    grid = st.columns(GRID_COLUMNS)
    for index, tile in enumerate(tiles):
        with grid[index % GRID_COLUMNS]:
            png = cached_thumbnail(tile.sha256, str(tile.path))
            label = tile.known_label or "unlabelled"
            caption = f"{short_name(tile.name)} · {tile.category or '-'} · {label}"
            if png is None:
                st.warning(f"{short_name(tile.name)}: the stored file cannot be read")
            else:
                st.image(png, caption=caption, width="stretch")


def render() -> None:
    """The Projects & upload page."""
    context.require_user()
    st.title("Projects & upload")
    notice = st.session_state.pop("adn_projects_notice", None)
    if notice:
        st.success(notice)
    create_project_form()
    project_id = context.selected_project()
    if project_id is None:
        st.info("Create a project (or pick one in the sidebar) to upload images.")
        return
    upload_form(project_id)
    show_result(project_id)
    rows = batches_section(project_id)
    thumbnail_grid(project_id, rows)


render()
