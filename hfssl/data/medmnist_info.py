"""The official MedMNIST table: 18 subsets (12 2D + 6 3D), their files, checksums and labels.

Every fact here (file names, MD5 checksums, Zenodo URLs, label names, task types, split sizes,
licenses, descriptions) is transcribed from the ``INFO`` dictionary of the official ``medmnist``
package (MedMNIST v3.0 / MedMNIST+, Zenodo record 10519652), so hfssl needs neither that package
nor the network to know what a valid file looks like. 2D subsets come in 28/64/128/224 pixels,
3D subsets in 28/64 voxels per side.

MedMNIST is the work of Jiancheng Yang, Rui Shi, Donglai Wei, Zequan Liu, Lin Zhao, Bilian Ke,
Hanspeter Pfister and Bingbing Ni; please cite it (``MEDMNIST_CITATION``) and the source dataset
of each subset when you use it. The data are CC BY 4.0, except DermaMNIST (CC BY-NC 4.0).
MedMNIST is not intended for clinical use.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfssl.errors import DataError

ZENODO_FILES = "https://zenodo.org/records/10519652/files"
"""Where the official files are distributed (MedMNIST+ record; the 28-pixel files equal v2's)."""

MEDMNIST_CITATION = """@article{medmnistv2,
  title={MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image classification},
  author={Yang, Jiancheng and Shi, Rui and Wei, Donglai and Liu, Zequan and Zhao, Lin and Ke, Bilian
          and Pfister, Hanspeter and Ni, Bingbing},
  journal={Scientific Data},
  volume={10},
  number={1},
  pages={41},
  year={2023},
  doi={10.1038/s41597-022-01721-8}
}"""

NPZ_SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split prefixes inside a MedMNIST ``.npz`` (``train_images``, ``val_labels``, ...)."""

TASKS: tuple[str, ...] = ("binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression")


@dataclass(frozen=True)
class MedMNISTFile:
    """One official ``.npz`` file: a subset at one image size."""

    size: int
    file_name: str
    md5: str
    url: str


def _file(size: int, file_name: str, md5: str) -> MedMNISTFile:
    return MedMNISTFile(size=size, file_name=file_name, md5=md5, url=f"{ZENODO_FILES}/{file_name}?download=1")


@dataclass(frozen=True)
class MedMNISTInfo:
    """Metadata of one MedMNIST subset, as published by its authors."""

    name: str
    python_class: str
    task: str
    n_channels: int
    spatial_dims: int
    labels: tuple[str, ...]
    """Label names ordered by label index (for ChestMNIST: the 14 finding names of the multi-hot vector)."""
    n_train: int
    n_val: int
    n_test: int
    files: tuple[MedMNISTFile, ...]
    license: str
    description: str

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def is_multilabel(self) -> bool:
        return self.task.startswith("multi-label")

    @property
    def n_samples(self) -> dict[str, int]:
        """Split sizes keyed by the ``.npz`` prefixes ``train``/``val``/``test``."""
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(f.size for f in self.files)

    def file(self, size: int) -> MedMNISTFile:
        """The official file of this subset at ``size`` pixels; ``DataError`` if there is none."""
        for f in self.files:
            if f.size == size:
                return f
        raise DataError(
            f"MedMNIST subset {self.name!r} has no {size}-pixel version",
            f"use --image-size with one of: {', '.join(map(str, self.sizes))}",
        )

    def image_shape(self, size: int) -> tuple[int, ...]:
        """Per-sample array shape in the file: (H, W) grey 2D, (H, W, 3) RGB 2D, (D, H, W) 3D."""
        if self.spatial_dims == 3:
            return (size, size, size)
        return (size, size) if self.n_channels == 1 else (size, size, self.n_channels)


_TABLE: tuple[MedMNISTInfo, ...] = (
    MedMNISTInfo(
        name="pathmnist",
        python_class="PathMNIST",
        task="multi-class",
        n_channels=3,
        spatial_dims=2,
        labels=(
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
        n_train=89996,
        n_val=10004,
        n_test=7180,
        files=(
            _file(28, "pathmnist.npz", "a8b06965200029087d5bd730944a56c1"),
            _file(64, "pathmnist_64.npz", "55aa9c1e0525abe5a6b9d8343a507616"),
            _file(128, "pathmnist_128.npz", "ac42d08fb904d92c244187169d1fd1d9"),
            _file(224, "pathmnist_224.npz", "2c51a510bcdc9cf8ddb2af93af1eadec"),
        ),
        license="CC BY 4.0",
        description=(
            "The PathMNIST is based on a prior study for predicting survival from colorectal cancer "
            "histology slides, providing a dataset (NCT-CRC-HE-100K) of 100,000 non-overlapping image "
            "patches from hematoxylin & eosin stained histological images, and a test dataset "
            "(CRC-VAL-HE-7K) of 7,180 image patches from a different clinical center. The dataset is "
            "comprised of 9 types of tissues, resulting in a multi-class classification task. We resize the "
            "source images of 3×224×224 into 3×28×28, and split NCT-CRC-HE-100K into training and validation "
            "set with a ratio of 9:1. The CRC-VAL-HE-7K is treated as the test set."
        ),
    ),
    MedMNISTInfo(
        name="chestmnist",
        python_class="ChestMNIST",
        task="multi-label, binary-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural",
            "hernia",
        ),
        n_train=78468,
        n_val=11219,
        n_test=22433,
        files=(
            _file(28, "chestmnist.npz", "02c8a6516a18b556561a56cbdd36c4a8"),
            _file(64, "chestmnist_64.npz", "9de6cd0b934ebb5b7426cfba5efbae16"),
            _file(128, "chestmnist_128.npz", "db107e5590b27930b62dbaf558aebee3"),
            _file(224, "chestmnist_224.npz", "45bd33e6f06c3e8cdb481c74a89152aa"),
        ),
        license="CC BY 4.0",
        description=(
            "The ChestMNIST is based on the NIH-ChestXray14 dataset, a dataset comprising 112,120 "
            "frontal-view X-Ray images of 30,805 unique patients with the text-mined 14 disease labels, "
            "which could be formulized as a multi-label binary-class classification task. We use the "
            "official data split, and resize the source images of 1×1024×1024 into 1×28×28."
        ),
    ),
    MedMNISTInfo(
        name="dermamnist",
        python_class="DermaMNIST",
        task="multi-class",
        n_channels=3,
        spatial_dims=2,
        labels=(
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
        n_train=7007,
        n_val=1003,
        n_test=2005,
        files=(
            _file(28, "dermamnist.npz", "0744692d530f8e62ec473284d019b0c7"),
            _file(64, "dermamnist_64.npz", "b70a2f5635c6199aeaa28c31d7202e1f"),
            _file(128, "dermamnist_128.npz", "2defd784463fa5243564e855ed717de1"),
            _file(224, "dermamnist_224.npz", "8974907d8e169bef5f5b96bc506ae45d"),
        ),
        license="CC BY-NC 4.0",
        description=(
            "The DermaMNIST is based on the HAM10000, a large collection of multi-source dermatoscopic "
            "images of common pigmented skin lesions. The dataset consists of 10,015 dermatoscopic images "
            "categorized as 7 different diseases, formulized as a multi-class classification task. We split "
            "the images into training, validation and test set with a ratio of 7:1:2. The source images of "
            "3×600×450 are resized into 3×28×28."
        ),
    ),
    MedMNISTInfo(
        name="octmnist",
        python_class="OCTMNIST",
        task="multi-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "choroidal neovascularization",
            "diabetic macular edema",
            "drusen",
            "normal",
        ),
        n_train=97477,
        n_val=10832,
        n_test=1000,
        files=(
            _file(28, "octmnist.npz", "c68d92d5b585d8d81f7112f81e2d0842"),
            _file(64, "octmnist_64.npz", "e229e9440236b774d9f0dfef9d07bdaf"),
            _file(128, "octmnist_128.npz", "0a97e76651ace45c5d943ee3f65b63ae"),
            _file(224, "octmnist_224.npz", "abc493b6d529d5de7569faaef2773ba3"),
        ),
        license="CC BY 4.0",
        description=(
            "The OCTMNIST is based on a prior dataset of 109,309 valid optical coherence tomography (OCT) "
            "images for retinal diseases. The dataset is comprised of 4 diagnosis categories, leading to a "
            "multi-class classification task. We split the source training set with a ratio of 9:1 into "
            "training and validation set, and use its source validation set as the test set. The source "
            "images are gray-scale, and their sizes are (384−1,536)×(277−512). We center-crop the images and "
            "resize them into 1×28×28."
        ),
    ),
    MedMNISTInfo(
        name="pneumoniamnist",
        python_class="PneumoniaMNIST",
        task="binary-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "normal",
            "pneumonia",
        ),
        n_train=4708,
        n_val=524,
        n_test=624,
        files=(
            _file(28, "pneumoniamnist.npz", "28209eda62fecd6e6a2d98b1501bb15f"),
            _file(64, "pneumoniamnist_64.npz", "8f4eceb4ccffa70c672198ea285246c6"),
            _file(128, "pneumoniamnist_128.npz", "05b46931834c231683c68f40c47b2971"),
            _file(224, "pneumoniamnist_224.npz", "d6a3c71de1b945ea11211b03746c1fe1"),
        ),
        license="CC BY 4.0",
        description=(
            "The PneumoniaMNIST is based on a prior dataset of 5,856 pediatric chest X-Ray images. The task "
            "is binary-class classification of pneumonia against normal. We split the source training set "
            "with a ratio of 9:1 into training and validation set and use its source validation set as the "
            "test set. The source images are gray-scale, and their sizes are (384−2,916)×(127−2,713). We "
            "center-crop the images and resize them into 1×28×28."
        ),
    ),
    MedMNISTInfo(
        name="retinamnist",
        python_class="RetinaMNIST",
        task="ordinal-regression",
        n_channels=3,
        spatial_dims=2,
        labels=(
            "0",
            "1",
            "2",
            "3",
            "4",
        ),
        n_train=1080,
        n_val=120,
        n_test=400,
        files=(
            _file(28, "retinamnist.npz", "bd4c0672f1bba3e3a89f0e4e876791e4"),
            _file(64, "retinamnist_64.npz", "afda852cc34dcda56f86ad2b2457dbcc"),
            _file(128, "retinamnist_128.npz", "e48e916a24454daf90583d4e6efb1a18"),
            _file(224, "retinamnist_224.npz", "eae7e3b6f3fcbda4ae613ebdcbe35348"),
        ),
        license="CC BY 4.0",
        description=(
            "The RetinaMNIST is based on the DeepDRiD challenge, which provides a dataset of 1,600 retina "
            "fundus images. The task is ordinal regression for 5-level grading of diabetic retinopathy "
            "severity. We split the source training set with a ratio of 9:1 into training and validation "
            "set, and use the source validation set as the test set. The source images of 3×1,736×1,824 are "
            "center-cropped and resized into 3×28×28."
        ),
    ),
    MedMNISTInfo(
        name="breastmnist",
        python_class="BreastMNIST",
        task="binary-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "malignant",
            "normal, benign",
        ),
        n_train=546,
        n_val=78,
        n_test=156,
        files=(
            _file(28, "breastmnist.npz", "750601b1f35ba3300ea97c75c52ff8f6"),
            _file(64, "breastmnist_64.npz", "742edef2a1fd1524b2efff4bd7ba9364"),
            _file(128, "breastmnist_128.npz", "363e4b3f8d712e9b5de15470a2aaadf1"),
            _file(224, "breastmnist_224.npz", "b56378a6eefa9fed602bb16d192d4c8b"),
        ),
        license="CC BY 4.0",
        description=(
            "The BreastMNIST is based on a dataset of 780 breast ultrasound images. It is categorized into 3 "
            "classes: normal, benign, and malignant. As we use low-resolution images, we simplify the task "
            "into binary classification by combining normal and benign as positive and classifying them "
            "against malignant as negative. We split the source dataset with a ratio of 7:1:2 into training, "
            "validation and test set. The source images of 1×500×500 are resized into 1×28×28."
        ),
    ),
    MedMNISTInfo(
        name="bloodmnist",
        python_class="BloodMNIST",
        task="multi-class",
        n_channels=3,
        spatial_dims=2,
        labels=(
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        n_train=11959,
        n_val=1712,
        n_test=3421,
        files=(
            _file(28, "bloodmnist.npz", "7053d0359d879ad8a5505303e11de1dc"),
            _file(64, "bloodmnist_64.npz", "2b94928a2ae4916078ca51e05b6b800b"),
            _file(128, "bloodmnist_128.npz", "adace1e0ed228fccda1f39692059dd4c"),
            _file(224, "bloodmnist_224.npz", "b718ff6835fcbdb22ba9eacccd7b2601"),
        ),
        license="CC BY 4.0",
        description=(
            "The BloodMNIST is based on a dataset of individual normal cells, captured from individuals "
            "without infection, hematologic or oncologic disease and free of any pharmacologic treatment at "
            "the moment of blood collection. It contains a total of 17,092 images and is organized into 8 "
            "classes. We split the source dataset with a ratio of 7:1:2 into training, validation and test "
            "set. The source images with resolution 3×360×363 pixels are center-cropped into 3×200×200, and "
            "then resized into 3×28×28."
        ),
    ),
    MedMNISTInfo(
        name="tissuemnist",
        python_class="TissueMNIST",
        task="multi-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "Collecting Duct, Connecting Tubule",
            "Distal Convoluted Tubule",
            "Glomerular endothelial cells",
            "Interstitial endothelial cells",
            "Leukocytes",
            "Podocytes",
            "Proximal Tubule Segments",
            "Thick Ascending Limb",
        ),
        n_train=165466,
        n_val=23640,
        n_test=47280,
        files=(
            _file(28, "tissuemnist.npz", "ebe78ee8b05294063de985d821c1c34b"),
            _file(64, "tissuemnist_64.npz", "123ece2eba09d0aa5d698fda57103344"),
            _file(128, "tissuemnist_128.npz", "61b955355d7425a89687b06cca3ce0c2"),
            _file(224, "tissuemnist_224.npz", "b077128c4a949f0a4eb01517f9037b9c"),
        ),
        license="CC BY 4.0",
        description=(
            "We use the BBBC051, available from the Broad Bioimage Benchmark Collection. The dataset "
            "contains 236,386 human kidney cortex cells, segmented from 3 reference tissue specimens and "
            "organized into 8 categories. We split the source dataset with a ratio of 7:1:2 into training, "
            "validation and test set. Each gray-scale image is 32×32×7 pixels, where 7 denotes 7 slices. We "
            "take maximum values across the slices and resize them into 28×28 gray-scale images."
        ),
    ),
    MedMNISTInfo(
        name="organamnist",
        python_class="OrganAMNIST",
        task="multi-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "bladder",
            "femur-left",
            "femur-right",
            "heart",
            "kidney-left",
            "kidney-right",
            "liver",
            "lung-left",
            "lung-right",
            "pancreas",
            "spleen",
        ),
        n_train=34561,
        n_val=6491,
        n_test=17778,
        files=(
            _file(28, "organamnist.npz", "68e3f8846a6bd62f0c9bf841c0d9eacc"),
            _file(64, "organamnist_64.npz", "2dcccc29b88e6da5a01161ef20cda288"),
            _file(128, "organamnist_128.npz", "eeae80d0a227a8d099027e1b3cfd3b60"),
            _file(224, "organamnist_224.npz", "50747347e05c87dd3aaf92c49f9f3170"),
        ),
        license="CC BY 4.0",
        description=(
            "The OrganAMNIST is based on 3D computed tomography (CT) images from Liver Tumor Segmentation "
            "Benchmark (LiTS). It is renamed from OrganMNIST_Axial (in MedMNIST v1) for simplicity. We use "
            "bounding-box annotations of 11 body organs from another study to obtain the organ labels. "
            "Hounsfield-Unit (HU) of the 3D images are transformed into gray-scale with an abdominal window. "
            "We crop 2D images from the center slices of the 3D bounding boxes in axial views (planes). The "
            "images are resized into 1×28×28 to perform multi-class classification of 11 body organs. 115 "
            "and 16 CT scans from the source training set are used as training and validation set, "
            "respectively. The 70 CT scans from the source test set are treated as the test set."
        ),
    ),
    MedMNISTInfo(
        name="organcmnist",
        python_class="OrganCMNIST",
        task="multi-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "bladder",
            "femur-left",
            "femur-right",
            "heart",
            "kidney-left",
            "kidney-right",
            "liver",
            "lung-left",
            "lung-right",
            "pancreas",
            "spleen",
        ),
        n_train=12975,
        n_val=2392,
        n_test=8216,
        files=(
            _file(28, "organcmnist.npz", "b9ceb9546e10131b32923c5bbeaea2b1"),
            _file(64, "organcmnist_64.npz", "3ce34a8724ea6f548e6db4744d03b6a9"),
            _file(128, "organcmnist_128.npz", "773c1f009daa3fe5d9a2a201b2a7ed94"),
            _file(224, "organcmnist_224.npz", "050f5e875dc056f6768abf94ec9995d1"),
        ),
        license="CC BY 4.0",
        description=(
            "The OrganCMNIST is based on 3D computed tomography (CT) images from Liver Tumor Segmentation "
            "Benchmark (LiTS). It is renamed from OrganMNIST_Coronal (in MedMNIST v1) for simplicity. We use "
            "bounding-box annotations of 11 body organs from another study to obtain the organ labels. "
            "Hounsfield-Unit (HU) of the 3D images are transformed into gray-scale with an abdominal window. "
            "We crop 2D images from the center slices of the 3D bounding boxes in coronal views (planes). "
            "The images are resized into 1×28×28 to perform multi-class classification of 11 body organs. "
            "115 and 16 CT scans from the source training set are used as training and validation set, "
            "respectively. The 70 CT scans from the source test set are treated as the test set."
        ),
    ),
    MedMNISTInfo(
        name="organsmnist",
        python_class="OrganSMNIST",
        task="multi-class",
        n_channels=1,
        spatial_dims=2,
        labels=(
            "bladder",
            "femur-left",
            "femur-right",
            "heart",
            "kidney-left",
            "kidney-right",
            "liver",
            "lung-left",
            "lung-right",
            "pancreas",
            "spleen",
        ),
        n_train=13932,
        n_val=2452,
        n_test=8827,
        files=(
            _file(28, "organsmnist.npz", "9ab87b696fb54e2a387ebe992d6ed5f1"),
            _file(64, "organsmnist_64.npz", "53a6d115339d874c25e309a994ff46d3"),
            _file(128, "organsmnist_128.npz", "ded0c5fa01a95dc4978b956f613e9b8e"),
            _file(224, "organsmnist_224.npz", "b354719e553fbbb2513d5533f52a4cb1"),
        ),
        license="CC BY 4.0",
        description=(
            "The OrganSMNIST is based on 3D computed tomography (CT) images from Liver Tumor Segmentation "
            "Benchmark (LiTS). It is renamed from OrganMNIST_Sagittal (in MedMNIST v1) for simplicity. We "
            "use bounding-box annotations of 11 body organs from another study to obtain the organ labels. "
            "Hounsfield-Unit (HU) of the 3D images are transformed into gray-scale with an abdominal window. "
            "We crop 2D images from the center slices of the 3D bounding boxes in sagittal views (planes). "
            "The images are resized into 1×28×28 to perform multi-class classification of 11 body organs. "
            "115 and 16 CT scans from the source training set are used as training and validation set, "
            "respectively. The 70 CT scans from the source test set are treated as the test set."
        ),
    ),
    MedMNISTInfo(
        name="organmnist3d",
        python_class="OrganMNIST3D",
        task="multi-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "liver",
            "kidney-right",
            "kidney-left",
            "femur-right",
            "femur-left",
            "bladder",
            "heart",
            "lung-right",
            "lung-left",
            "spleen",
            "pancreas",
        ),
        n_train=971,
        n_val=161,
        n_test=610,
        files=(
            _file(28, "organmnist3d.npz", "a0c5a1ff56af4f155c46d46fbb45a2fe"),
            _file(64, "organmnist3d_64.npz", "58a2205adf14a9d0a189cb06dc78bf10"),
        ),
        license="CC BY 4.0",
        description=(
            "The source of the OrganMNIST3D is the same as that of the Organ{A,C,S}MNIST. Instead of 2D "
            "images, we directly use the 3D bounding boxes and process the images into 28×28×28 to perform "
            "multi-class classification of 11 body organs. The same 115 and 16 CT scans as the "
            "Organ{A,C,S}MNIST from the source training set are used as training and validation set, "
            "respectively, and the same 70 CT scans as the Organ{A,C,S}MNIST from the source test set are "
            "treated as the test set."
        ),
    ),
    MedMNISTInfo(
        name="nodulemnist3d",
        python_class="NoduleMNIST3D",
        task="binary-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "benign",
            "malignant",
        ),
        n_train=1158,
        n_val=165,
        n_test=310,
        files=(
            _file(28, "nodulemnist3d.npz", "8755a7e9e05a4d9ce80a24c3e7a256f3"),
            _file(64, "nodulemnist3d_64.npz", "c47c5b7d457bf6332200d2ea6d64ecd8"),
        ),
        license="CC BY 4.0",
        description=(
            "The NoduleMNIST3D is based on the LIDC-IDRI, a large public lung nodule dataset, containing "
            "images from thoracic CT scans. The dataset is designed for both lung nodule segmentation and "
            "5-level malignancy classification task. To perform binary classification, we categorize cases "
            "with malignancy level 1/2 into negative class and 4/5 into positive class, ignoring the cases "
            "with malignancy level 3. We split the source dataset with a ratio of 7:1:2 into training, "
            "validation and test set, and center-crop the spatially normalized images (with a spacing of "
            "1mm×1mm×1mm) into 28×28×28."
        ),
    ),
    MedMNISTInfo(
        name="adrenalmnist3d",
        python_class="AdrenalMNIST3D",
        task="binary-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "normal",
            "hyperplasia",
        ),
        n_train=1188,
        n_val=98,
        n_test=298,
        files=(
            _file(28, "adrenalmnist3d.npz", "bbd3c5a5576322bc4cdfea780653b1ce"),
            _file(64, "adrenalmnist3d_64.npz", "17721accfe9fb005146a47d33bc54b2f"),
        ),
        license="CC BY 4.0",
        description=(
            "The AdrenalMNIST3D is a new 3D shape classification dataset, consisting of shape masks from "
            "1,584 left and right adrenal glands (i.e., 792 patients). Collected from Zhongshan Hospital "
            "Affiliated to Fudan University, each 3D shape of adrenal gland is annotated by an expert "
            "endocrinologist using abdominal computed tomography (CT), together with a binary classification "
            "label of normal adrenal gland or adrenal mass. Considering patient privacy, we do not provide "
            "the source CT scans, but the real 3D shapes of adrenal glands and their classification labels. "
            "We calculate the center of adrenal and resize the center-cropped 64mm×64mm×64mm volume into "
            "28×28×28. The dataset is randomly split into training/validation/test set of 1,188/98/298 on a "
            "patient level."
        ),
    ),
    MedMNISTInfo(
        name="fracturemnist3d",
        python_class="FractureMNIST3D",
        task="multi-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "buckle rib fracture",
            "nondisplaced rib fracture",
            "displaced rib fracture",
        ),
        n_train=1027,
        n_val=103,
        n_test=240,
        files=(
            _file(28, "fracturemnist3d.npz", "6aa7b0143a6b42da40027a9dda61302f"),
            _file(64, "fracturemnist3d_64.npz", "f01d7e6316aedf4210da0da5b7437b42"),
        ),
        license="CC BY 4.0",
        description=(
            "The FractureMNIST3D is based on the RibFrac Dataset, containing around 5,000 rib fractures from "
            "660 computed tomography 153 (CT) scans. The dataset organizes detected rib fractures into 4 "
            "clinical categories (i.e., buckle, nondisplaced, displaced, and segmental rib fractures). As we "
            "use low-resolution images, we disregard segmental rib fractures and classify 3 types of rib "
            "fractures (i.e., buckle, nondisplaced, and displaced). For each annotated fracture area, we "
            "calculate its center and resize the center-cropped 64mm×64mm×64mm image into 28×28×28. The "
            "official split of training, validation and test set is used."
        ),
    ),
    MedMNISTInfo(
        name="vesselmnist3d",
        python_class="VesselMNIST3D",
        task="binary-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "vessel",
            "aneurysm",
        ),
        n_train=1335,
        n_val=191,
        n_test=382,
        files=(
            _file(28, "vesselmnist3d.npz", "b41fd4f7e7e2feedddb201585ecafa1b"),
            _file(64, "vesselmnist3d_64.npz", "6bb274a8846e1097066dcd64e2c4520f"),
        ),
        license="CC BY 4.0",
        description=(
            "The VesselMNIST3D is based on an open-access 3D intracranial aneurysm dataset, IntrA, "
            "containing 103 3D models (meshes) of entire brain vessels collected by reconstructing MRA "
            "images. 1,694 healthy vessel segments and 215 aneurysm segments are generated automatically "
            "from the complete models. We fix the non-watertight mesh with PyMeshFix and voxelize the "
            "watertight mesh with trimesh into 28×28×28 voxels. We split the source dataset with a ratio of "
            "7:1:2 into training, validation and test set."
        ),
    ),
    MedMNISTInfo(
        name="synapsemnist3d",
        python_class="SynapseMNIST3D",
        task="binary-class",
        n_channels=1,
        spatial_dims=3,
        labels=(
            "inhibitory synapse",
            "excitatory synapse",
        ),
        n_train=1230,
        n_val=177,
        n_test=352,
        files=(
            _file(28, "synapsemnist3d.npz", "1235b78a3cd6280881dd7850a78eadb6"),
            _file(64, "synapsemnist3d_64.npz", "43bd14ebf3af9d3dd072446fedc14d5e"),
        ),
        license="CC BY 4.0",
        description=(
            "The SynapseMNIST3D is a new 3D volume dataset to classify whether a synapse is excitatory or "
            "inhibitory. It uses a 3D image volume of an adult rat acquired by a multi-beam scanning "
            "electron microscope. The original data is of the size 100×100×100um^3 and the resolution "
            "8×8×30nm^3, where a (30um)^3 sub-volume was used in the MitoEM dataset with dense 3D "
            "mitochondria instance segmentation labels. Three neuroscience experts segment a pyramidal "
            "neuron within the whole volume and proofread all the synapses on this neuron with "
            "excitatory/inhibitory labels. For each labeled synaptic location, we crop a 3D volume of "
            "1024×1024×1024nm^3 and resize it into 28×28×28 voxels. Finally, the dataset is randomly split "
            "with a ratio of 7:1:2 into training, validation and test set."
        ),
    ),
)

MEDMNIST: dict[str, MedMNISTInfo] = {info.name: info for info in _TABLE}
"""All 18 subsets by lower-case name (``breastmnist``, ``adrenalmnist3d``, ...)."""

MEDMNIST_2D: tuple[str, ...] = tuple(n for n, i in MEDMNIST.items() if i.spatial_dims == 2)
MEDMNIST_3D: tuple[str, ...] = tuple(n for n, i in MEDMNIST.items() if i.spatial_dims == 3)


def get_info(name: str) -> MedMNISTInfo:
    """The table entry for ``name`` (case-insensitive; ``BreastMNIST`` works); ``DataError`` if unknown."""
    key = name.strip().lower()
    if key not in MEDMNIST:
        raise DataError(
            f"unknown MedMNIST subset {name!r}",
            f"use one of: {', '.join(MEDMNIST)}",
        )
    return MEDMNIST[key]
