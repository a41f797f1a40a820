"""The built-in entries of every registry: quantizer families, models, methods, datasets.

Adding one is its implementation module plus one entry here (or, from outside the package, a plugin that
calls the same ``register_*`` functions: see :mod:`mebqat.core.registry`). Implementations are named by
``"module:attribute"`` and imported on first use, so reading this catalog never imports torch.
"""

from __future__ import annotations

from .registry import (
    DatasetInfo,
    MethodInfo,
    ModelInfo,
    QuantizerInfo,
    register_dataset,
    register_method,
    register_model,
    register_quantizer,
)

# ---------------------------------------------------------------- quantizer families (official-mebqat.md §2)

UNIFORM_TO_16 = (2, 3, 4, 5, 6, 7, 8, 16, None)

register_quantizer(
    QuantizerInfo(
        "dorefa",
        impl="mebqat.quant.dorefa:SCHEME",
        bit_choices=(1, *UNIFORM_TO_16),
        description="DoReFa / Any-Precision DNN ('Yu21'): tanh-normalised weights with E scale and a 1-bit sign case; "
        "activations clipped to [0, 1]; no learned parameters",
    )
)
register_quantizer(
    QuantizerInfo(
        "sat",
        impl="mebqat.quant.sat:SCHEME",
        bit_choices=UNIFORM_TO_16,
        learned={"activation.alpha": "clip_level"},
        description="SAT / AdaBits: tanh-normalised weights ('modified' or 'original' rounding, classifier rescale); "
        "activations with a learned clipping level α",
    )
)
register_quantizer(
    QuantizerInfo(
        "lsq",
        impl="mebqat.quant.lsq:SCHEME",
        bit_choices=UNIFORM_TO_16,
        learned={"weight.step": "weight_step", "activation.step": "activation_step"},
        description="LSQ: learned step size, signed weights, unsigned post-ReLU activations (2^b or 2^b−1 upper "
        "level), step shared across bitwidths or one per bitwidth",
    )
)

# ---------------------------------------------------------------- models (official-mebqat.md §3)

register_model(
    ModelInfo(
        "mobilenetv2_cifar",
        impl="mebqat.models.mobilenetv2:mobilenetv2_cifar",
        default_scheme="sat",
        input_shape=(3, 32, 32),
        description="MobileNetV2 for CIFAR-10 (width_mult 1: 2,236,682 parameters)",
    )
)
register_model(
    ModelInfo(
        "preact_resnet20",
        impl="mebqat.models.preact_resnet:preact_resnet20",
        default_scheme="dorefa",
        input_shape=(3, 32, 32),
        description="Any-Precision DNN's PreAct-ResNet-20 (expand 5: 6,758,810 parameters)",
    )
)
register_model(
    ModelInfo(
        "cnn_svhn",
        impl="mebqat.models.cnn_svhn:cnn_svhn",
        default_scheme="dorefa",
        input_shape=(3, 40, 40),
        description="Any-Precision DNN's 8-layer SVHN CNN (expand 8: 2,081,354 parameters)",
    )
)
register_model(
    ModelInfo(
        "maml_convnet",
        impl="mebqat.models.convnets:maml_convnet",
        default_scheme="lsq",
        from_data=("ways",),
        description="the MAML 5-layer CNN: 4 conv blocks (BatchNorm β only) + linear classifier",
    )
)
register_model(
    ModelInfo(
        "proto_convnet",
        impl="mebqat.models.convnets:proto_convnet",
        default_scheme="lsq",
        description="the Prototypical-Network 4-layer CNN (affine BatchNorm, no classifier)",
    )
)

# ---------------------------------------------------------------- methods (official-mebqat.md §4, baselines.md)

register_method(
    MethodInfo(
        "mebqat",
        impl="mebqat.methods.mebqat_supervised:MEBQATSupervised",
        title="MEBQAT",
        tables=("table2",),
        problem="supervised",
        cost_role="mebqat",
        options={"tasks_per_step": 4, "guaranteed": ["(FP,FP)"], "kd": True},
        description="T bitwidth tasks per batch, guaranteed tasks first, KD from the FP model, per-parameter mean",
    )
)
register_method(
    MethodInfo(
        "qat",
        impl="baselines.qat:DedicatedQAT",
        title="QAT",
        tables=("table2",),
        problem="supervised",
        per_bitwidth=True,
        cost_role="dedicated",
        description="one model per bitwidth, CE at that task",
    )
)
register_method(
    MethodInfo(
        "adabits",
        impl="baselines.adabits:AdaBits",
        title="AdaBits",
        tables=("table2",),
        problem="supervised",
        cost_role="adaptive",
        options={"bits": [2, 3, 4]},
        description="CE at every bitwidth of its bit list, summed; switchable clipping levels and BatchNorm",
    )
)
register_method(
    MethodInfo(
        "apdnn",
        impl="baselines.apdnn:AnyPrecisionDNN",
        title="ApDNN",
        tables=("table2",),
        problem="supervised",
        cost_role="adaptive",
        options={"bits": [1, 2, 4, 8, "FP"]},
        description="CE at FP, recursive distillation down the bit list, summed; switchable BatchNorm",
    )
)
register_method(
    MethodInfo(
        "fomaml",
        impl="baselines.fomaml:FOMAML",
        title="FOMAML",
        tables=("table4",),
        problem="fewshot",
        description="first-order MAML at full precision, quantized only at meta-test",
    )
)
register_method(
    MethodInfo(
        "fomaml_qat",
        impl="baselines.fomaml:FOMAML",
        title="FOMAML+QAT",
        tables=("table4",),
        problem="fewshot",
        per_bitwidth=True,
        fp_row_from="fomaml",
        description="first-order MAML at one fixed bitwidth task",
    )
)
register_method(
    MethodInfo(
        "mebqat_maml",
        impl="mebqat.methods.mebqat_fewshot:MEBQATMAML",
        title="MEBQAT-MAML",
        tables=("table4",),
        problem="fewshot",
        description="FOMAML with a bitwidth task drawn per episode from the 73 LSQ candidates",
    )
)
register_method(
    MethodInfo(
        "pn",
        impl="baselines.protonet:PrototypicalNetwork",
        title="PN",
        tables=("table5",),
        problem="fewshot",
        description="Prototypical Networks at full precision, quantized only at meta-test",
    )
)
register_method(
    MethodInfo(
        "pn_qat",
        impl="baselines.protonet:PrototypicalNetwork",
        title="PN+QAT",
        tables=("table5",),
        problem="fewshot",
        per_bitwidth=True,
        fp_row_from="pn",
        description="Prototypical Networks at one fixed bitwidth task",
    )
)
register_method(
    MethodInfo(
        "mebqat_pn",
        impl="mebqat.methods.mebqat_fewshot:MEBQATPN",
        title="MEBQAT-PN",
        tables=("table5",),
        problem="fewshot",
        options={"tasks_per_step": 4},
        description="Prototypical Networks with T bitwidth tasks sharing each episode",
    )
)

# ---------------------------------------------------------------- datasets (official-mebqat.md §6)

_TORCHVISION = "let torchvision download it (download=True, or `mebqat data build {name} --download`), or "
_STANDIN = "nothing to download: {how} into <root>/standins/ on first use (`mebqat data build {name}`)"

register_dataset(
    DatasetInfo(
        "cifar10",
        impl="mebqat.data.cifar10:load",
        kind="supervised",
        input_shape=(3, 32, 32),
        num_classes=10,
        is_standin=False,
        stands_for=None,
        sizes={"trainval": 50_000, "test": 10_000},
        description="CIFAR-10 (torchvision): 50,000 training / 10,000 test colour images of 10 classes, 32x32; "
        "val = 5,000 training images held out (stratified, seed 0).",
        how_to_obtain=_TORCHVISION.format(name="cifar10") + "download "
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into the data root so "
        "that <root>/cifar-10-batches-py/ holds data_batch_1 … data_batch_5, test_batch and batches.meta",
    )
)
register_dataset(
    DatasetInfo(
        "svhn",
        impl="mebqat.data.svhn:load",
        kind="supervised",
        input_shape=(3, 40, 40),
        num_classes=10,
        is_standin=False,
        stands_for=None,
        sizes={"trainval": 604_388, "test": 26_032},
        description="SVHN cropped digits (torchvision): train + extra = 604,388 training and 26,032 test images, "
        "resized from 32x32 to 40x40; val = 6,000 training images held out (stratified, seed 0).",
        how_to_obtain=_TORCHVISION.format(name="svhn") + "download train_32x32.mat, extra_32x32.mat and "
        "test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into <root>/svhn/",
    )
)
register_dataset(
    DatasetInfo(
        "digits",
        impl="mebqat.data.digits:load",
        build="mebqat.data.digits:build",
        kind="supervised",
        input_shape=(3, 32, 32),
        num_classes=10,
        is_standin=True,
        stands_for="cifar10 / svhn",
        description="scikit-learn's 1,797 real 8x8 handwritten digits resized to the setup's input (3x32x32 for "
        "CIFAR-10's place, 3x40x40 for SVHN's); train/val/test = 1,293/144/360 (stratified, seed 0).",
        how_to_obtain="nothing to download: built from scikit-learn's bundled copy into <root>/standins/ on first use "
        "(`mebqat data build digits`)",
    )
)
register_dataset(
    DatasetInfo(
        "omniglot",
        impl="mebqat.data.omniglot:load",
        kind="fewshot",
        input_shape=(1, 28, 28),
        num_classes=4 * 1623,
        is_standin=False,
        stands_for=None,
        split_classes={"train": 4112, "val": 688, "test": 1692},
        description="Omniglot (torchvision files), Vinyals character split 1028/172/423, each character x4 rotations "
        "-> 4112/688/1692 classes of 20 images, 28x28, inverted strokes.",
        how_to_obtain=_TORCHVISION.format(name="omniglot") + "download images_background.zip and "
        "images_evaluation.zip from https://github.com/brendenlake/omniglot/tree/master/python into "
        "<root>/omniglot-py/ (they are extracted on first use; the extracted folders alone load with "
        "verify=False)",
    )
)
register_dataset(
    DatasetInfo(
        "miniimagenet",
        impl="mebqat.data.miniimagenet:load",
        kind="fewshot",
        input_shape=(3, 84, 84),
        num_classes=100,
        is_standin=False,
        stands_for=None,
        split_classes={"train": 64, "val": 16, "test": 20},
        description="MiniImageNet (learn2learn's pickles), Ravi-Larochelle split 64/16/20 classes x 600 images, 84x84.",
        how_to_obtain="let learn2learn download it (download=True, or `mebqat data build miniimagenet --download`; it "
        "tries Zenodo/Dropbox/Google Drive), or place mini-imagenet-cache-train.pkl, "
        "mini-imagenet-cache-validation.pkl and mini-imagenet-cache-test.pkl (e.g. from "
        "https://zenodo.org/record/7978538) in <root>/mini-imagenet/",
    )
)
register_dataset(
    DatasetInfo(
        "glyphs28",
        impl="mebqat.data.glyphs:load_glyphs28",
        build="mebqat.data.glyphs:build_glyphs28",
        kind="fewshot",
        input_shape=(1, 28, 28),
        num_classes=1028 + 172 + 423,
        is_standin=True,
        stands_for="omniglot",
        split_classes={"train": 1028, "val": 172, "test": 423},
        description="characters of many scripts and symbol sets rendered from matplotlib's fonts with random "
        "distortions; alphabet-disjoint splits of 1028/172/423 characters x 20 samples; 1x28x28 grey, "
        "strokes bright on black.",
        how_to_obtain=_STANDIN.format(how="rendered from matplotlib's fonts", name="glyphs28"),
    )
)
register_dataset(
    DatasetInfo(
        "glyphs84",
        impl="mebqat.data.glyphs:load_glyphs84",
        build="mebqat.data.glyphs:build_glyphs84",
        kind="fewshot",
        input_shape=(3, 84, 84),
        num_classes=64 + 16 + 20,
        is_standin=True,
        stands_for="miniimagenet",
        split_classes={"train": 64, "val": 16, "test": 20},
        description="characters rendered from matplotlib's fonts, coloured, on random textured colour backgrounds; "
        "alphabet-disjoint splits of 64/16/20 classes x 40 samples; 3x84x84.",
        how_to_obtain=_STANDIN.format(how="rendered from matplotlib's fonts", name="glyphs84"),
    )
)
