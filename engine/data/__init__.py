"""The engine's data layer: decoding images, finding datasets, the ELPV protocol, transforms."""

from engine.data.elpv import (
    CELL_TYPES,
    ElpvSplit,
    elpv_data_dir,
    make_elpv_split,
    mild_probability,
    read_elpv_labels,
    read_elpv_split,
    write_elpv_mvtec_layout,
)
from engine.data.images import DEFAULT_MAX_PIXELS, ImageInfo, ImageSource, load_image, probe_image
from engine.data.sources import (
    IMAGE_EXTENSIONS,
    CategorySplit,
    ImageRecord,
    file_records,
    folder_records,
    mvtec_categories,
    mvtec_split,
)
from engine.data.transforms import (
    color_jitter,
    image_to_tensor,
    random_angles,
    rotate_batch,
    test_view_angles,
    to_unit,
)

__all__ = [
    "CELL_TYPES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "CategorySplit",
    "ElpvSplit",
    "ImageInfo",
    "ImageRecord",
    "ImageSource",
    "color_jitter",
    "elpv_data_dir",
    "file_records",
    "folder_records",
    "image_to_tensor",
    "load_image",
    "make_elpv_split",
    "mild_probability",
    "mvtec_categories",
    "mvtec_split",
    "probe_image",
    "random_angles",
    "read_elpv_labels",
    "read_elpv_split",
    "rotate_batch",
    "test_view_angles",
    "to_unit",
    "write_elpv_mvtec_layout",
]
