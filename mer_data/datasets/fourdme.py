"""4DME (registry name `4dme`): the sheet `4DME_Labelling_Micro_release v1.xlsx` and frames gray_micro/<sub_ID>/<fold_name>/.

Known only from others' code ([C] in ../shared/DATASETS.md, from MEB): the sheet's name (with its space before
"v1"), its columns (`sub_ID`, `fold_name`, `Onset`, `Apex`, `Offset`, `AUs`, `Emotion`, plus counts we do not read)
and the folder layout (`gray_micro`, cropped `gray_micro_crop`). The frame file names were not seen anywhere: the
last number in a name is taken as the frame number the sheet uses. An emotion may name two classes
("Surprise+Positive"); single-label mappings leave those rows out as excluded_class. AUs marked "(k)" are static and
left out of the AU columns, as MEB does. MEB swaps two rows of its copy (144 and 145, AUs onward); we cannot key
them without the sheet.
"""

from __future__ import annotations

from mer_data.datasets import tabular

FPS = 60.0  # capture rate (frames/s) of the frame folders [L]

SPEC = tabular.SheetSpec(
    dataset="4dme",
    what="4DME sheet",
    sheet_files=("4DME_Labelling_Micro_release v1.xlsx",),
    sheet_name=None,  # its worksheet name is not known: the first one
    columns={"subject": "sub_ID", "clip": "fold_name", "onset": "Onset", "apex": "Apex", "offset": "Offset",
             "emotion": "Emotion"},
    optional={"au": ("AUs",)},
    frame_dirs=("gray_micro", "gray_micro_crop"),
    pattern=r"(?:.*\D)?(\d+)\.(?:jpg|png|bmp)",  # the last number of the name: img12.jpg, S01_..._0012.jpg, 12.png
    subject_folder=str,
    clip_name=str,
    rel_path=lambda subject, clip: f"{subject}/{clip}",
    key=lambda subject, clip, onset: f"{subject}/{clip}",
    video_starts_at_onset=True,
)

annotation_file, iter_samples, iter_clips, clip_for = tabular.bind(SPEC, subject_glob="*")
