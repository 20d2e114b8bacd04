"""The 78 MMEB-V2 tasks as data: where each one's annotations and media live and how it is scored.

One row per task, in the leaderboard's order (image 36, video 18, visual documents 24). Everything
here is read from the VLM2Vec reference harness (its eval yaml files, dataset parsers and
`dataset_hf_path` table) unless a field says otherwise; see `/shared/MMEB-V2.md` for the protocol.

[I] marks values that are inferred rather than read: the mteb `category` of each task (which
modalities may appear on each side: chosen wide enough that no row's text or media is dropped),
the `domains` / `task_subtypes` / `date` fields mteb's metadata asks for, and the licences (the
MMEB-V2 annotation repos declare none that we could read offline, so "not specified" unless known).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGE, VIDEO, VISDOC = "image", "video", "visdoc"
MODALITIES = (IMAGE, VIDEO, VISDOC)

LOCAL, GLOBAL = "local", "global"

# Leaderboard categories per modality, in display order.
CATEGORIES: dict[str, tuple[str, ...]] = {
    IMAGE: ("CLS", "QA", "RET", "VG"),
    VIDEO: ("CLS", "QA", "RET", "MRET"),
    VISDOC: ("ViDoRe-V1", "ViDoRe-V2", "VisRAG", "VisDoc-OOD"),
}

IMAGE_ANNOTATIONS = "ziyjiang/MMEB_Test_Instruct"
MEDIA_REPO = "TIGER-Lab/MMEB-V2"

# Instructions that are code constants in the reference harness (image-task instructions are
# dataset fields instead and travel with each row).
VIDEO_CLS_INSTRUCTIONS = {
    "SmthSmthV2": "What actions or object interactions are being performed by the person in the video?",
    "HMDB51": "What actions or objects interactions are the person in the video doing?",
    "UCF101": "What activities or sports are being performed by the person in the video?",
    "K700": "Recognize the category of the video content.",
    "Breakfast": "Recognize the breakfast type that the person is cooking in the video.",
}
VIDEO_RET_INSTRUCTIONS = {
    "MSR-VTT": "Find a video that contains the following visual content:",
    "MSVD": "Find the video snippet that corresponds to the given summary:",
    "DiDeMo": "Find a video that includes the following described scenes:",
    "YouCook2": "Find a video that demonstrates the following action while making a recipe:",
    "VATEX": "Select a video that fits the description provided:",
}
VIDEO_DOCUMENT_INSTRUCTION = "Understand the content of the provided video."
MOMENT_QUERY_INSTRUCTION = "Find the clip that corresponds to the described scene in the given video:"
MOMENTSEEKER_INSTRUCTIONS = {
    "text": "Find the clip that corresponds to the given text:",
    "image": "Select the video clip that aligns with the given text and image:",
    "video": "Find the clip that corresponds to the given sentence and video segment:",
    "document": "Understand the content of the provided video clip.",
}
VIDEO_QA_INSTRUCTION = (
    "Given a video and a question, select the most accurate answer from the provided candidates. "
    "Return only the exact text of your chosen answer."
)
VISDOC_QUERY_INSTRUCTION = "Find a document image that matches the given query:"
VISDOC_DOCUMENT_INSTRUCTION = "Understand the content of the provided document image."

NUM_VIDEO_FRAMES = 8
"""Frames per video, evenly spaced over the saved frames (`np.linspace`); all frames if fewer."""


@dataclass(frozen=True)
class MMEBTaskSpec:
    """One MMEB-V2 task.

    Attributes:
        name: the task's MMEB-V2 / leaderboard name (the reference yaml key).
        modality: "image", "video" or "visdoc".
        category: the leaderboard category within the modality.
        parser: the reference harness parser that builds queries and candidates.
        hf_path / hf_configs / hf_split: the annotation table on the Hub (several configs are
            concatenated, as for MVBench's 20).
        eval_type: "local" (rank each query's own candidates) or "global" (every unique candidate).
        num_queries: the query count the published scores were computed on (MMEB-V2.md).
        mteb_category: mteb's `query2document` modality code [I].
        media: media folder under `MMEB_V2_ROOT` (image root or the task's frame root); None when
            the media ship inside the annotation table (visual documents).
        max_queries: the harness keeps only the first N rows (SmthSmthV2: 1000).
        about: one line for the task description.
        eval_langs / domains / task_subtypes / license: mteb metadata fields.
    """

    name: str
    modality: str
    category: str
    parser: str
    hf_path: str
    hf_configs: tuple[str | None, ...]
    hf_split: str
    eval_type: str
    num_queries: int
    mteb_category: str
    media: str | None
    about: str
    domains: tuple[str, ...] = ("Web",)
    task_subtypes: tuple[str, ...] = ()
    eval_langs: tuple[str, ...] = ("eng-Latn",)
    license: str = "not specified"
    max_queries: int | None = None
    main_score: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "main_score", "ndcg_at_5" if self.modality == VISDOC else "hit_rate_at_1")

    @property
    def hf_config(self) -> str | None:
        return self.hf_configs[0] if len(self.hf_configs) == 1 else None


def _image(name, category, parser, about, subtypes, domains=("Web",), mteb_category=None):
    default_category = {"image_t2i": "t2it", "image_i2i_vg": "it2it"}.get(parser, "it2t")
    return MMEBTaskSpec(
        name=name, modality=IMAGE, category=category, parser=parser, hf_path=IMAGE_ANNOTATIONS,
        hf_configs=(name,), hf_split="test", eval_type=LOCAL, num_queries=1000,
        mteb_category=mteb_category or default_category, media="image-tasks", about=about,
        domains=domains, task_subtypes=subtypes,
    )


_OBJ, _SCENE = ("Object recognition",), ("Scene recognition",)
_QA, _ITR = ("Question answering",), ("Image Text Retrieval",)

IMAGE_TASKS = (
    _image("ImageNet-1K", "CLS", "image_cls",
           "ImageNet-1K object classification over its label set.", _OBJ, ("Encyclopaedic",)),
    _image("N24News", "CLS", "image_cls",
           "News image + caption classified into N24News domains.", ("Topic classification",), ("News",)),
    _image("HatefulMemes", "CLS", "image_cls",
           "Hateful Memes: decide whether a meme is hateful.", ("Sentiment/Hate speech",), ("Social",)),
    _image("VOC2007", "CLS", "image_cls", "PASCAL VOC 2007 object classification.", _OBJ, ("Scene",)),
    _image("SUN397", "CLS", "image_cls", "SUN397 scene classification.", _SCENE, ("Scene",)),
    _image("Place365", "CLS", "image_cls", "Places365 scene classification.", _SCENE, ("Scene",)),
    _image("ImageNet-A", "CLS", "image_cls",
           "ImageNet-A natural adversarial images classified into ImageNet labels.", _OBJ, ("Encyclopaedic",)),
    _image("ImageNet-R", "CLS", "image_cls",
           "ImageNet-R renditions (art, cartoons, ...) classified into ImageNet labels.", _OBJ, ("Encyclopaedic",)),
    _image("ObjectNet", "CLS", "image_cls", "ObjectNet objects in unusual poses and backgrounds.", _OBJ, ("Scene",)),
    _image("Country211", "CLS", "image_cls",
           "Country211 geolocation: the country a photo was taken in.", _SCENE, ("Web",)),
    _image("OK-VQA", "QA", "image_qa", "OK-VQA knowledge-based visual question answering.", _QA, ("Encyclopaedic",)),
    _image("A-OKVQA", "QA", "image_qa", "A-OKVQA commonsense and world-knowledge VQA.", _QA, ("Encyclopaedic",)),
    _image("DocVQA", "QA", "image_qa", "DocVQA questions on document images.", _QA, ("Written",)),
    _image("InfographicsVQA", "QA", "image_qa", "InfographicVQA questions on infographics.", _QA, ("Written",)),
    _image("ChartQA", "QA", "image_qa", "ChartQA questions on charts.", _QA, ("Written",)),
    _image("Visual7W", "QA", "image_qa", "Visual7W telling questions (what/where/when/who/why/how).", _QA, ("Scene",)),
    _image("ScienceQA", "QA", "image_qa", "ScienceQA multimodal science questions.", _QA, ("Academic",)),
    _image("VizWiz", "QA", "image_qa", "VizWiz questions asked by blind people about their photos.", _QA, ("Social",)),
    _image("GQA", "QA", "image_qa", "GQA compositional scene-graph questions.", _QA, ("Scene",)),
    _image("TextVQA", "QA", "image_qa", "TextVQA questions that require reading text in images.", _QA, ("Scene",)),
    _image("MSCOCO_i2t", "RET", "image_i2t", "MSCOCO image-to-caption retrieval.", _ITR, ("Scene",)),
    _image("VisualNews_i2t", "RET", "image_i2t", "VisualNews news image-to-caption retrieval.", _ITR, ("News",)),
    _image("VisDial", "RET", "image_t2i",
           "VisDial: retrieve the image a dialogue is about.", ("Conversational retrieval",), ("Scene",)),
    _image("MSCOCO_t2i", "RET", "image_t2i", "MSCOCO caption-to-image retrieval.", _ITR, ("Scene",)),
    _image("VisualNews_t2i", "RET", "image_t2i", "VisualNews caption-to-news-image retrieval.", _ITR, ("News",)),
    _image("WebQA", "RET", "image_t2i", "WebQA: retrieve the captioned image that answers a question.", _ITR, ("Web",)),
    _image("EDIS", "RET", "image_t2i", "EDIS entity-rich news image (with headline) retrieval.", _ITR, ("News",)),
    _image("Wiki-SS-NQ", "RET", "image_t2i",
           "Wiki-SS-NQ: retrieve the Wikipedia screenshot answering an NQ question.", _ITR, ("Encyclopaedic",)),
    _image("CIRR", "RET", "image_i2i_vg",
           "CIRR composed image retrieval (reference image + modification text).", _ITR, ("Scene",)),
    _image("NIGHTS", "RET", "image_i2i_vg",
           "NIGHTS perceptual image-to-image similarity.", ("Duplicate Image Retrieval",), ("Scene",)),
    _image("OVEN", "RET", "image_i2i_vg",
           "OVEN open-domain visual entity recognition as retrieval.", _ITR, ("Encyclopaedic",)),
    _image("FashionIQ", "RET", "image_i2i_vg", "FashionIQ composed fashion image retrieval.", _ITR, ("E-commerce",)),
    _image("MSCOCO", "VG", "image_i2i_vg",
           "MSCOCO visual grounding: retrieve the crop of a named object.", _OBJ, ("Scene",)),
    _image("RefCOCO", "VG", "image_i2i_vg",
           "RefCOCO referring-expression grounding as crop retrieval.", _OBJ, ("Scene",)),
    _image("RefCOCO-Matching", "VG", "image_i2i_vg",
           "RefCOCO matching: image + expression to captioned crop.", _OBJ, ("Scene",)),
    _image("Visual7W-Pointing", "VG", "image_i2i_vg",
           "Visual7W pointing questions answered by an image region.", _OBJ, ("Scene",)),
)


def _video(name, category, parser, repo, split, eval_type, n, mteb_category, frames, about, *, configs=(None,),
           domains=("Activity",), subtypes=(), max_queries=None):
    return MMEBTaskSpec(
        name=name, modality=VIDEO, category=category, parser=parser, hf_path=repo, hf_configs=tuple(configs),
        hf_split=split, eval_type=eval_type, num_queries=n, mteb_category=mteb_category,
        media=f"video-tasks/frames/{frames}", about=about, domains=domains, task_subtypes=subtypes,
        max_queries=max_queries,
    )


_ACT, _XMR, _EVT = ("Activity recognition",), ("Cross-Modal Retrieval",), ("Event Retrieval",)

MVBENCH_CONFIGS = (
    "episodic_reasoning", "action_sequence", "action_prediction", "action_antonym", "fine_grained_action",
    "unexpected_action", "object_existence", "object_interaction", "object_shuffle", "moving_direction",
    "action_localization", "scene_transition", "action_count", "moving_count", "moving_attribute",
    "state_change", "fine_grained_pose", "character_order", "egocentric_navigation", "counterfactual_inference",
)

VIDEO_TASKS = (
    _video("SmthSmthV2", "CLS", "ssv2", "VLM2Vec/SmthSmthV2", "test", LOCAL, 1000, "v2t", "video_cls/SSv2",
           "Something-Something V2 action classification among per-video candidate labels.", subtypes=_ACT,
           max_queries=1000),
    _video("HMDB51", "CLS", "video_classification", "VLM2Vec/HMDB51", "test", GLOBAL, 1000, "v2t", "video_cls/HMDB51",
           "HMDB51 action classification over all 51 labels.", subtypes=_ACT),
    _video("UCF101", "CLS", "video_classification", "VLM2Vec/UCF101", "test", GLOBAL, 1000, "v2t", "video_cls/UCF101",
           "UCF101 action classification over all 101 labels.", subtypes=_ACT, domains=("Activity", "Sport")),
    _video("K700", "CLS", "video_classification", "VLM2Vec/Kinetics-700", "test", GLOBAL, 1000, "v2t", "video_cls/K700",
           "Kinetics-700 action classification over all 700 labels.", subtypes=_ACT),
    _video("Breakfast", "CLS", "video_classification", "VLM2Vec/Breakfast", "test", GLOBAL, 433, "v2t",
           "video_cls/Breakfast", "Breakfast: recognise which of 10 breakfast dishes is being cooked.", subtypes=_ACT,
           domains=("Instructional",)),
    _video("MSR-VTT", "RET", "msrvtt", "VLM2Vec/MSR-VTT", "test", GLOBAL, 1000, "t2v", "video_ret/MSR-VTT",
           "MSR-VTT (1k-A test) caption-to-video retrieval.", configs=("test_1k",), subtypes=_XMR, domains=("Web",)),
    _video("MSVD", "RET", "msvd", "VLM2Vec/MSVD", "test", GLOBAL, 670, "t2v", "video_ret/MSVD",
           "MSVD caption-to-video retrieval.", subtypes=_XMR, domains=("Web",)),
    _video("DiDeMo", "RET", "didemo", "VLM2Vec/DiDeMo", "test", GLOBAL, 1004, "t2v", "video_ret/DiDeMo",
           "DiDeMo paragraph-to-video retrieval.", subtypes=_XMR, domains=("Web",)),
    _video("YouCook2", "RET", "youcook2", "lmms-lab/YouCook2", "val", GLOBAL, 3179, "t2v", "video_ret/YouCook2",
           "YouCook2 recipe-step-to-clip retrieval.", subtypes=_XMR, domains=("Instructional",)),
    _video("VATEX", "RET", "vatex", "VLM2Vec/VATEX", "test", GLOBAL, 4478, "t2v", "video_ret/VATEX",
           "VATEX English caption-to-video retrieval.", subtypes=_XMR, domains=("Web",)),
    _video("QVHighlight", "MRET", "moment_retrieval", "VLM2Vec/QVHighlight", "test", LOCAL, 1083, "vt2v",
           "video_mret/QVHighlight", "QVHighlights: find the clip of a video that matches a query.", subtypes=_EVT,
           domains=("Web",)),
    _video("Charades-STA", "MRET", "moment_retrieval", "VLM2Vec/Charades-STA", "test", LOCAL, 727, "vt2v",
           "video_mret/Charades_STA", "Charades-STA temporal grounding as clip retrieval.", subtypes=_EVT),
    _video("MomentSeeker", "MRET", "momentseeker", "VLM2Vec/MomentSeeker", "test", LOCAL, 1602, "vt2v",
           "video_mret/MomentSeeker", "MomentSeeker: text, image or video queries to the matching moment(s).",
           subtypes=_EVT, domains=("Web",)),
    _video("Video-MME", "QA", "videomme", "VLM2Vec/Video-MME", "test", LOCAL, 2700, "vt2t", "video_qa/Video-MME",
           "Video-MME multiple-choice video question answering.", subtypes=_QA, domains=("Web",)),
    _video("NExTQA", "QA", "nextqa", "VLM2Vec/NExTQA", "test", LOCAL, 8564, "vt2t", "video_qa/NExTQA",
           "NExT-QA multiple-choice causal/temporal video questions.", configs=("MC",), subtypes=_QA),
    _video("EgoSchema", "QA", "egoschema", "VLM2Vec/EgoSchema", "test", LOCAL, 500, "vt2t", "video_qa/EgoSchema",
           "EgoSchema long egocentric-video multiple-choice questions (public subset).", configs=("Subset",),
           subtypes=_QA, domains=("Egocentric",)),
    _video("MVBench", "QA", "mvbench", "VLM2Vec/MVBench", "train", LOCAL, 4000, "vt2t", "video_qa/MVBench",
           "MVBench: 20 temporal-understanding multiple-choice video tasks.", configs=MVBENCH_CONFIGS, subtypes=_QA),
    _video("ActivityNetQA", "QA", "activitynetqa", "VLM2Vec/ActivityNetQA", "test", LOCAL, 1000, "vt2t",
           "video_qa/ActivityNetQA", "ActivityNet-QA yes/no questions.", subtypes=_QA),
)


def _visdoc(name, category, repo, split, n, about, *, langs=("eng-Latn",), domains=("Academic",),
            license="not specified"):
    return MMEBTaskSpec(
        name=name, modality=VISDOC, category=category, parser="vidore" if not name.startswith("VisRAG") else "visrag",
        hf_path=repo, hf_configs=("queries",), hf_split=split, eval_type=GLOBAL, num_queries=n, mteb_category="t2i",
        media=None, about=about, domains=domains, task_subtypes=_ITR, eval_langs=langs, license=license,
    )


_V2_LANGS = ("eng-Latn", "fra-Latn", "spa-Latn", "deu-Latn")

VISDOC_TASKS = (
    _visdoc("ViDoRe_arxivqa", "ViDoRe-V1", "vidore/arxivqa_test_subsampled_beir", "test", 500,
            "ViDoRe ArxivQA: figures from arXiv papers.", license="mit"),
    _visdoc("ViDoRe_docvqa", "ViDoRe-V1", "vidore/docvqa_test_subsampled_beir", "test", 451,
            "ViDoRe DocVQA: industry document pages.", license="mit"),
    _visdoc("ViDoRe_infovqa", "ViDoRe-V1", "vidore/infovqa_test_subsampled_beir", "test", 494,
            "ViDoRe InfoVQA: infographics.", license="mit"),
    _visdoc("ViDoRe_tabfquad", "ViDoRe-V1", "vidore/tabfquad_test_subsampled_beir", "test", 280,
            "ViDoRe TabFQuAD: French tables.", license="mit"),
    _visdoc("ViDoRe_tatdqa", "ViDoRe-V1", "vidore/tatdqa_test_beir", "test", 1646,
            "ViDoRe TAT-DQA: financial report pages with tables.", license="mit", domains=("Financial",)),
    _visdoc("ViDoRe_shiftproject", "ViDoRe-V1", "vidore/shiftproject_test_beir", "test", 100,
            "ViDoRe Shift Project: environmental reports.", license="mit"),
    _visdoc("ViDoRe_syntheticDocQA_artificial_intelligence", "ViDoRe-V1",
            "vidore/syntheticDocQA_artificial_intelligence_test_beir", "test", 100,
            "ViDoRe synthetic DocQA on artificial-intelligence documents.", license="mit"),
    _visdoc("ViDoRe_syntheticDocQA_energy", "ViDoRe-V1", "vidore/syntheticDocQA_energy_test_beir", "test", 100,
            "ViDoRe synthetic DocQA on energy documents.", license="mit"),
    _visdoc("ViDoRe_syntheticDocQA_government_reports", "ViDoRe-V1",
            "vidore/syntheticDocQA_government_reports_test_beir", "test", 100,
            "ViDoRe synthetic DocQA on government reports.", license="mit", domains=("Government",)),
    _visdoc("ViDoRe_syntheticDocQA_healthcare_industry", "ViDoRe-V1",
            "vidore/syntheticDocQA_healthcare_industry_test_beir", "test", 100,
            "ViDoRe synthetic DocQA on healthcare-industry documents.", license="mit", domains=("Medical",)),
    _visdoc("ViDoRe_esg_reports_human_labeled_v2", "ViDoRe-V2", "vidore/esg_reports_human_labeled_v2", "test", 52,
            "ViDoRe V2 ESG reports, human-labelled queries.", license="mit"),
    _visdoc("ViDoRe_biomedical_lectures_v2_multilingual", "ViDoRe-V2", "vidore/biomedical_lectures_v2", "test", 640,
            "ViDoRe V2 biomedical lectures, queries in all four languages.", langs=_V2_LANGS, license="mit",
            domains=("Medical",)),
    _visdoc("ViDoRe_economics_reports_v2_multilingual", "ViDoRe-V2", "vidore/economics_reports_v2", "test", 232,
            "ViDoRe V2 economics reports, queries in all four languages.", langs=_V2_LANGS, license="mit",
            domains=("Financial",)),
    _visdoc("ViDoRe_esg_reports_v2_multilingual", "ViDoRe-V2", "vidore/esg_reports_v2", "test", 228,
            "ViDoRe V2 ESG reports, queries in all four languages.", langs=_V2_LANGS, license="mit"),
    _visdoc("VisRAG_ArxivQA", "VisRAG", "openbmb/VisRAG-Ret-Test-ArxivQA", "train", 816,
            "VisRAG retrieval test set built on ArxivQA."),
    _visdoc("VisRAG_ChartQA", "VisRAG", "openbmb/VisRAG-Ret-Test-ChartQA", "train", 63,
            "VisRAG retrieval test set built on ChartQA."),
    _visdoc("VisRAG_MP-DocVQA", "VisRAG", "openbmb/VisRAG-Ret-Test-MP-DocVQA", "train", 591,
            "VisRAG retrieval test set built on MP-DocVQA."),
    _visdoc("VisRAG_SlideVQA", "VisRAG", "openbmb/VisRAG-Ret-Test-SlideVQA", "train", 556,
            "VisRAG retrieval test set built on SlideVQA."),
    _visdoc("VisRAG_InfoVQA", "VisRAG", "openbmb/VisRAG-Ret-Test-InfoVQA", "train", 718,
            "VisRAG retrieval test set built on InfoVQA."),
    _visdoc("VisRAG_PlotQA", "VisRAG", "openbmb/VisRAG-Ret-Test-PlotQA", "train", 863,
            "VisRAG retrieval test set built on PlotQA."),
    _visdoc("ViDoSeek-page", "VisDoc-OOD", "VLM2Vec/ViDoSeek-page-fixed", "test", 1142,
            "ViDoSeek page-level retrieval (the page-id-fixed data)."),
    _visdoc("ViDoSeek-doc", "VisDoc-OOD", "VLM2Vec/ViDoSeek", "test", 1142,
            "ViDoSeek document-level retrieval: every page of the source document is relevant."),
    _visdoc("MMLongBench-page", "VisDoc-OOD", "VLM2Vec/MMLongBench-page-fixed", "test", 838,
            "MMLongBench-Doc page-level retrieval (the page-id-fixed data)."),
    _visdoc("MMLongBench-doc", "VisDoc-OOD", "VLM2Vec/MMLongBench-doc", "test", 838,
            "MMLongBench-Doc document-level retrieval: every page of the source document is relevant."),
)

TASK_SPECS: tuple[MMEBTaskSpec, ...] = IMAGE_TASKS + VIDEO_TASKS + VISDOC_TASKS
SPECS_BY_NAME: dict[str, MMEBTaskSpec] = {spec.name: spec for spec in TASK_SPECS}

MMEB_TRAIN_IN_DISTRIBUTION = (
    "ImageNet-1K", "N24News", "HatefulMemes", "VOC2007", "SUN397",
    "OK-VQA", "A-OKVQA", "DocVQA", "InfographicsVQA", "ChartQA", "Visual7W",
    "VisDial", "CIRR", "VisualNews_t2i", "VisualNews_i2t", "MSCOCO_t2i", "MSCOCO_i2t", "NIGHTS", "WebQA",
    "MSCOCO",
)
"""The 20 MMEB image tasks whose training splits make up MMEB-train (VLM2Vec's "in-distribution" set).
A model trained on `TIGER-Lab/MMEB-train` has seen these datasets (their training splits)."""


def hub_repos() -> tuple[str, ...]:
    """Every Hub dataset repo the 78 tasks read annotations from, plus the media repo."""
    repos = dict.fromkeys(spec.hf_path for spec in TASK_SPECS)
    repos[MEDIA_REPO] = None
    return tuple(repos)
