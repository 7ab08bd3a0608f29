"""Classify and Regress as TF Serving runs them (servables/tensorflow/classifier.cc, regressor.cc).

A classify or regress signature has one input, `inputs`, which is fed a vector of serialized
tf.train.Example protos (json_tensor.examples_from_json). Classify reads the outputs `classes`
(strings) and `scores` (floats), either or both, each [batch, classes]; regress reads `outputs`,
[batch] or [batch, 1] floats. TF Serving checks a signature's method_name only with
--enable_signature_method_name_check (off by default), so neither do we: any signature with these
inputs and outputs will do. The messages are TF Serving's.
"""

import numpy as np
from google.protobuf import text_format

from serving import json_tensor, tensor_proto
from serving.status import invalid

INPUTS = "inputs"  # kClassifyInputs, kRegressInputs
CLASSES, SCORES = "classes", "scores"  # kClassifyOutputClasses, kClassifyOutputScores
OUTPUTS = "outputs"  # kRegressOutputs


def check_signature(api: str, key: str, signature_defs) -> None:
    """GetClassificationSignatureDef() / GetRegressionSignatureDef(): the named SignatureDef
    exists and has the inputs and outputs `api` (classify or regress) needs."""
    if key not in signature_defs:
        raise invalid(f"No signature was found with the name: {key}")
    proto = signature_defs[key]
    if len(proto.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if api == "classify":
        if len(proto.outputs) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(proto.outputs)}")
        if INPUTS not in proto.inputs:
            raise invalid("No classification inputs found in SignatureDef: ", _debug(proto))
        if CLASSES not in proto.outputs and SCORES not in proto.outputs:
            raise invalid(
                'Expected classification signature outputs to contain at least one of "classes" '
                'or "scores". Signature was: ',
                _debug(proto),
            )
        return
    if len(proto.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if INPUTS not in proto.inputs:
        raise invalid("No regression inputs found in SignatureDef: ", _debug(proto))
    if OUTPUTS not in proto.outputs:
        raise invalid("No regression outputs found in SignatureDef: ", _debug(proto))


def _debug(proto) -> str:
    return text_format.MessageToString(proto)  # the text of the C++ DebugString()


def results_json(api: str, outputs: dict[str, np.ndarray], num_examples: int) -> str:
    """The response body for the signature's outputs on `num_examples` examples."""
    if api == "classify":
        return json_tensor.classification_json(classifications(outputs, num_examples))
    return json_tensor.regression_json(regressions(outputs, num_examples))


def classifications(outputs: dict[str, np.ndarray], num_examples: int) -> list[list[tuple]]:
    """PostProcessClassificationResult(): per example, its (label, score) pairs; a label is
    empty without `classes`, a score 0 without `scores`."""
    classes, scores = outputs.get(CLASSES), outputs.get(SCORES)
    for name, tensor, dtype in ((CLASSES, classes, "DT_STRING"), (SCORES, scores, "DT_FLOAT")):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid(
                "Expected Tensor shape: [batch_size num_classes] but got ",
                tensor_proto.shape_string(tensor.shape),
            )
        got = tensor_proto.type_name(tensor.dtype)
        if got != dtype:
            raise invalid(f"Expected {name} Tensor of {dtype}. Got: {got}")
        if tensor.shape[0] != num_examples:
            raise invalid(
                f"Expected {name} output batch size of {num_examples}. Got: {tensor.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    shape = (classes if classes is not None else scores).shape
    labels = (classes if classes is not None else np.full(shape, b"", dtype=object)).tolist()
    values = (scores if scores is not None else np.zeros(shape)).tolist()
    return [list(zip(c, s, strict=True)) for c, s in zip(labels, values, strict=True)]


def regressions(outputs: dict[str, np.ndarray], num_examples: int) -> list[float]:
    """PostProcessRegressionResult(): one value per example."""
    tensor = outputs[OUTPUTS]
    if not (tensor.ndim == 1 or (tensor.ndim == 2 and tensor.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got ",
            tensor_proto.shape_string(tensor.shape),
        )
    if tensor.shape[0] != num_examples:
        raise invalid(
            "Input batch size did not match output batch size: "
            f"{num_examples} vs. {tensor.shape[0]}"
        )
    got = tensor_proto.type_name(tensor.dtype)
    if got != "DT_FLOAT":
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {got}")
    return [float(v) for v in tensor.ravel()]
