"""TF Serving's JSON <-> tensor rules (tensorflow_serving/util/json_tensor.cc), messages included.

Request bodies become numpy arrays keyed by signature input name; output arrays become the
`predictions` (row) or `outputs` (columnar) JSON. Numeric requests take fast paths: a body that
is nothing but `{"instances" or "inputs": <rectangular array of numbers>}` is read straight into
one float64 array (numeric_body), other numeric lists are built by numpy from the parsed lists in
C; anything unusual walks the JSON the way json_tensor.cc does, so each error carries TF Serving's
own message.
"""

import array
import base64
import functools
import json
import math
import re
from dataclasses import dataclass

import numpy as np
from tensorflow.core.example import example_pb2

from serving.status import ServingError, invalid
from serving.tensor_proto import shape_string, type_string

try:  # optional: parses a 28x28 image several times faster than the json module
    import orjson
except ImportError:
    orjson = None

ROW, COLUMNAR = "row", "columnar"
_BOTH_KEYS = "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "

_INT_RANGES = {
    # json_tensor.cc checks IsInt() for all small ints
    **dict.fromkeys(("int32", "int16", "int8", "uint8"), (-(2**31), 2**31 - 1)),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_FLOAT_MAX = float(np.finfo(np.float32).max)
# TensorShape::MaxDimensions(): Tensor::FromProto() refuses a tensor of more dimensions, so TF
# Serving answers "tensor parsing error" for it; here no deeper document is parsed at all.
MAX_TENSOR_RANK = 254
_PARSE_ERROR = "JSON Parse error: "
_NUMBER_TOO_BIG = _PARSE_ERROR + "Number too big to be stored in double. at offset: "
_NUMPY_MAX_DIMS = 64
_FLOAT_MAX_INT = 2**24 - 1  # IsLosslessDecimal<float>: largest integer a float holds exactly
_DOUBLE_MAX_INT = 2**53 - 1

# rapidjson's GetParseError_En() texts for the failures Python's parser reports.
_RAPIDJSON_MESSAGES = [
    ("Expecting value", "Invalid value."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
    ("Invalid control character", "Invalid encoding in string."),
]


@dataclass
class TensorSpec:
    """One signature input or output: its dtype and shape (-1 for an unknown dimension)."""

    dtype: np.dtype
    shape: tuple[int, ...] | None  # None: unknown rank


# ---------------------------------------------------------------- parsing the request document


class TooDeep(ServingError):
    """A document nested deeper than any tensor can be (TensorShape's limit)."""


def parse_json(body: bytes) -> dict:
    """ParseJson(): the body as a JSON object, or TF Serving's parse error.

    A body nested deeper than a tensor can be raises TooDeep before it is parsed: parsing and
    walking it would recurse as deep as its brackets, on the thread that serves every client."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    if nesting_depth(body) - 1 > MAX_TENSOR_RANK:
        raise TooDeep(
            "INVALID_ARGUMENT",
            f"JSON Parse error: values nested deeper than {MAX_TENSOR_RANK} levels",
        )
    if orjson is not None:
        try:
            doc = orjson.loads(body)
            if isinstance(doc, dict):
                return doc
        except orjson.JSONDecodeError as e:
            if e.msg.startswith("number is infinity"):  # 1e400: rapidjson refuses it too
                raise invalid(_NUMBER_TOO_BIG, e.pos) from None
            # NaN/Infinity literals, or an error: the json module decides and explains
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(_PARSE_ERROR, "Invalid encoding in string. at offset: ", e.start) from None
    if not text.strip():
        raise invalid("JSON Parse error: The document is empty. at offset: ", len(text))
    try:
        # Accepts NaN and Infinity, as rapidjson's kParseNanAndInfFlag; not a number that only
        # reads as infinity (rapidjson's kParseErrorNumberTooBig).
        doc = json.loads(text, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise invalid(_PARSE_ERROR, _rapidjson_message(e, text), " at offset: ", e.pos) from None
    except _Overflow as e:
        raise invalid(_NUMBER_TOO_BIG, e.offset(text)) from None
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    return doc


class _Overflow(Exception):
    def __init__(self, token: str):
        self.token = token

    def offset(self, text: str) -> int:
        """Where the number starts: the first number token outside strings that equals it."""
        for match in _NUMBER_OR_STRING.finditer(text):
            if match.group(1) == self.token:
                return match.start()
        return text.find(self.token)


_NUMBER_OR_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?[0-9][0-9.eE+-]*)')


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise _Overflow(token)
    return value


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_DEPTH_STEPS = np.zeros(256, np.int8)
_DEPTH_STEPS[[ord("["), ord("{")]] = 1
_DEPTH_STEPS[[ord("]"), ord("}")]] = -1


def nesting_depth(body: bytes) -> int:
    """How deep the body's brackets ([ and {) nest, brackets inside strings not counted. Linear
    in the body's length and done in C, so 100,000 nested brackets cost what their bytes cost."""
    if b'"' in body:
        body = _STRING.sub(b'""', body)
    steps = _DEPTH_STEPS[np.frombuffer(body, np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def _rapidjson_message(e: json.JSONDecodeError, text: str) -> str:
    if e.msg == "Expecting ',' delimiter":
        # Python says the same for arrays and objects; rapidjson names the bracket.
        if _innermost_open_bracket(text, e.pos) == "[":
            return "Missing a comma or ']' after an array element."
        return "Missing a comma or '}' after an object member."
    return next((r for p, r in _RAPIDJSON_MESSAGES if e.msg.startswith(p)), "Invalid value.")


def _innermost_open_bracket(text: str, pos: int) -> str:
    stack, in_string, escaped = [], False, False
    for ch in text[:pos]:
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "{"


# ---------------------------------------------------------------- the numeric fast path

_NUMERIC_HEAD = re.compile(rb'\s*\{\s*"(instances|inputs)"\s*:\s*\[')
_NUMBER_BYTES = b"0123456789+-.eE"
_WHITESPACE = b" \t\r\n"
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")


@dataclass
class NumericBody:
    """A body that is just {key: <rectangular array of JSON numbers>}: the array as float64."""

    key: str  # "instances" or "inputs"
    values: np.ndarray


def numeric_body(body: bytes) -> NumericBody | None:
    """The body as a NumericBody, or None when it is anything else (parse_json decides then).

    Exact: the bytes between the key and the closing brace may hold only numbers, whitespace,
    brackets and commas; the brackets and commas must be those of a rectangular array; and
    orjson must read every number of it as JSON. So a body read here is valid JSON with no other
    key, and its array is the one np.array() would build from the parsed lists.
    """
    if orjson is None:
        return None
    head = _NUMERIC_HEAD.match(body)
    if head is None:
        return None
    rest = body[head.end() - 1 :].rstrip()
    if rest[-1:] != b"}":
        return None
    text = rest[:-1].rstrip()
    skeleton = text.translate(None, _NUMBER_BYTES + _WHITESPACE)
    if skeleton.translate(None, b"[],"):
        return None  # strings, literals (true, NaN...), objects: the general path
    if len(skeleton) - len(skeleton.lstrip(b"[")) > _NUMPY_MAX_DIMS:
        return None  # too deep for an array: the general path refuses it
    shape = _rectangular_shape(skeleton)
    if shape is None:
        return None  # ragged
    try:
        flat = orjson.loads(b"[" + text.translate(_BRACKETS_TO_SPACES) + b"]")
    except orjson.JSONDecodeError:
        return None  # not JSON numbers, an empty list, or an integer beyond 64 bits
    if math.prod(shape) != len(flat):
        return None  # empty lists, a comma with no number, or numbers with no comma between
    values = np.array(flat, dtype=np.float64).reshape(shape)
    return NumericBody(head.group(1).decode(), values)


@functools.lru_cache(maxsize=64)
def _rectangular_shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape of the rectangular array with exactly these brackets and commas, or None.
    Cached: most requests of a client share one skeleton, and working it out costs more than
    hashing it."""
    rank = len(skeleton) - len(skeleton.lstrip(b"["))
    shape = []
    for level in range(rank):
        # The first list at this level ends at the first run of (rank - level) closing brackets;
        # its elements are separated by commas that follow (rank - level - 1) of them.
        first = skeleton[: skeleton.find(b"]" * (rank - level)) + 1]
        shape.append(first.count(b"]" * (rank - level - 1) + b",") + 1)
    return tuple(shape) if _skeleton(tuple(shape)) == skeleton else None


@functools.lru_cache(maxsize=64)
def _skeleton(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a rectangular array of this shape, numbers left out."""
    if not shape:
        return b""
    return b"[" + b",".join([_skeleton(shape[1:])] * shape[0]) + b"]"


def numeric_inputs(
    body: NumericBody, inputs: dict[str, TensorSpec]
) -> tuple[dict[str, np.ndarray], str] | None:
    """predict_inputs() for a NumericBody, or None where the general path must decide (and
    explain): several inputs, a tensor that is not float32/float64, or a value a float might not
    hold exactly."""
    if len(inputs) != 1:
        return None
    name, spec = next(iter(inputs.items()))
    if spec.dtype not in (np.float32, np.float64) or np.abs(body.values).max() > _FLOAT_MAX_INT:
        return None
    return {name: body.values.astype(spec.dtype)}, ROW if body.key == "instances" else COLUMNAR


def signature_name(doc: dict) -> str:
    """FillSignature(): the optional signature_name, which must be a string."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise _format_error(
            doc, "not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def predict_inputs(
    doc: dict, inputs: dict[str, TensorSpec], may_have_bools: bool = True
) -> tuple[dict[str, np.ndarray], str]:
    """FillPredictRequestFromJson() after the signature lookup: (arrays by input name, format).

    may_have_bools=False (the body has no `true`/`false`) lets numeric input skip a bool search.
    """
    if not inputs:
        raise invalid("Failed to get input map for signature: ", "DEFAULT")
    if "instances" in doc:
        if "inputs" in doc:
            raise _format_error(doc, _BOTH_KEYS)
        instances = doc["instances"]
        if not isinstance(instances, list):
            # json_tensor.cc spells it "Excepting" (sic); we answer what TF Serving answers.
            raise _format_error(doc, "Excepting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        return _from_instances(instances, inputs, may_have_bools), ROW
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], inputs, may_have_bools), COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(
    instances: list, inputs: dict[str, TensorSpec], may_have_bools: bool
) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    elements_are_objects = _is_element_object(instances[0])
    if not elements_are_objects:
        name, spec = next(iter(inputs.items()))
        fast = _fast_array(instances, spec.dtype, may_have_bools)
        if fast is not None:
            return {name: fast}
    rows: dict[str, list] = {name: [] for name in inputs}
    shapes: dict[str, tuple[list[int], int]] = {}
    for index, element in enumerate(instances):
        if elements_are_objects:
            if not _is_element_object(element):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for key, value in element.items():
                try:
                    rows[key].extend(_instance_item(value, key, inputs, shapes))
                except ServingError as e:
                    raise invalid(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: {e}"
                    ) from None
            if set(element) != set(inputs):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: ",
                    value_to_string(element),
                    " must only have keys: ",
                    ",".join(sorted(inputs)),
                )
        else:
            if _is_element_object(element):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                rows[name].extend(_instance_item(element, name, inputs, shapes))
            except ServingError as e:
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. Error: {e}"
                ) from None
    # Every input given has a value in every instance, or an error was raised.
    return {
        name: _to_array(flat, inputs[name].dtype, [len(instances), *shapes[name][0]])
        for name, flat in rows.items()
        if name in shapes
    }


def _instance_item(value, name: str, inputs: dict[str, TensorSpec], shapes: dict) -> list:
    """AddInstanceItem(): one instance's flat values, checked against the first instance's shape."""
    if name not in inputs:
        raise invalid("JSON object: does not have named input: ", name)
    shape, flat = _flatten(value, inputs[name].dtype)
    size = len(flat)
    if name not in shapes:
        shapes[name] = (shape, size)
    elif shapes[name][1] != size:
        raise invalid(f"Expecting tensor size: {shapes[name][1]} but got: {size}")
    elif shapes[name][0] != shape:
        raise invalid(
            f"Expecting shape {shape_string(shapes[name][0])} but got: {shape_string(shape)}"
        )
    return flat


def _from_inputs(
    value, inputs: dict[str, TensorSpec], may_have_bools: bool
) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap(): the columnar format."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        name, spec = next(iter(inputs.items()))
        return {name: _tensor(value, spec.dtype, may_have_bools)}
    arrays = {}
    for name, spec in inputs.items():
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _tensor(value[name], spec.dtype, may_have_bools)
    return arrays


def _tensor(value, dtype: np.dtype, may_have_bools: bool) -> np.ndarray:
    if isinstance(value, list):
        fast = _fast_array(value, dtype, may_have_bools)
        if fast is not None:
            return fast
    shape, flat = _flatten(value, dtype)
    return _to_array(flat, dtype, shape)


def _fast_array(value: list, dtype: np.dtype, may_have_bools: bool) -> np.ndarray | None:
    """The common case in one numpy call, or None when the slow path must decide (and explain)."""
    if dtype.kind not in "fiu":
        return None
    try:
        array = np.array(value)
    except (ValueError, OverflowError):
        return None  # ragged, or a number beyond int64
    if array.size == 0:
        return None
    kind = array.dtype.kind
    if kind not in ("fi" if dtype.kind == "f" else "i"):
        return None  # bools, strings, objects; floats where integers are expected
    if dtype.kind in "iu":
        low, high = _INT_RANGES[type_string(dtype)]
        if array.min() < low or array.max() > high:
            return None
    elif kind == "i":
        if np.abs(array).max() > (_FLOAT_MAX_INT if dtype == np.float32 else _DOUBLE_MAX_INT):
            return None
    elif dtype == np.float32 and np.abs(array[np.isfinite(array)]).max(initial=0) > _FLOAT_MAX:
        return None
    if may_have_bools and _has_bool(value, array.ndim):
        return None
    return array.astype(dtype, copy=False)


def _has_bool(value: list, ndim: int) -> bool:
    # numpy turns True into 1 silently; TF Serving refuses a bool where a number is expected.
    if ndim == 1:
        return any(type(v) is bool for v in value)
    return any(_has_bool(v, ndim - 1) for v in value)


def _flatten(value, dtype: np.dtype) -> tuple[list[int], list]:
    """GetDenseTensorShape(), the shape read down the first elements, then FillTensorProto()."""
    shape, first = [], value
    while isinstance(first, list):
        shape.append(len(first))
        first = first[0] if first else None
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    return shape, flat


def _fill(value, level: int, shape: list[int], dtype: np.dtype, out: list) -> None:
    """FillTensorProto(): checks every value and list against the shape, appends the values."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _format_error(
                value,
                f"found at incorrect level: {level + 1} in the JSON DOM. Expected at level: {rank}",
            )
        if isinstance(value, dict):
            if dtype != np.dtype(object):
                raise _type_error(value, dtype)
            out.append(_decode_b64(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for v in value:
        _fill(v, level + 1, shape, dtype, out)


def _scalar(value, dtype: np.dtype):
    """AddValueToTensor(): one JSON value as the expected type."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype.kind == "f":
        if not is_number:
            raise _type_error(value, dtype)
        if not _lossless(value, dtype):
            target = "float" if dtype == np.float32 else "double"
            raise invalid(
                f"Cannot convert JSON value: {value_to_string(value)} to {target} "
                "without loss of precision."
            )
        return value
    if dtype.kind in "iu":
        low, high = _INT_RANGES[type_string(dtype)]
        if not (isinstance(value, int) and is_number and low <= value <= high):
            raise _type_error(value, dtype)
        return value
    if dtype == np.bool_:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == np.dtype(object):  # DT_STRING
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    raise ServingError(
        "UNIMPLEMENTED", f"Conversion of JSON Value: {value_to_string(value)} to type: {dtype}"
    )


def _lossless(value, dtype: np.dtype) -> bool:
    """IsLosslessDecimal<T>()."""
    if isinstance(value, int):
        return abs(value) <= (_FLOAT_MAX_INT if dtype == np.float32 else _DOUBLE_MAX_INT)
    return dtype != np.float32 or not math.isfinite(value) or abs(value) <= _FLOAT_MAX


def _to_array(flat: list, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    if len(shape) > _NUMPY_MAX_DIMS:
        # TF Serving would feed it and the model refuse its rank; numpy cannot even hold it.
        raise invalid(
            f"A tensor of {len(shape)} dimensions: this server holds at most {_NUMPY_MAX_DIMS}"
        )
    return np.array(flat, dtype=dtype).reshape(shape)


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_element_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _decode_b64(value) -> bytes:
    if not _is_b64(value):
        raise _format_error(value, "not formatted correctly for base64 data")
    data = value["b64"]
    for text in (data, data + "=" * (-len(data) % 4)):  # absl's Base64Unescape: padding optional
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error included
            pass
    raise invalid("Unable to base64 decode")


def _type_error(value, dtype: np.dtype) -> ServingError:
    return _format_error(
        value, f"Type: {_json_type(value)} is not of expected type: {type_string(dtype)}"
    )


_JSON_TYPES = {type(None): "Null", dict: "Object", list: "Array", str: "String"}


def _json_type(value) -> str:
    if isinstance(value, bool):
        return str(value)  # rapidjson's types True and False
    return _JSON_TYPES.get(type(value), "Number")


def _format_error(doc, *parts: str) -> ServingError:
    return invalid("JSON Value: ", value_to_string(doc), " ", *parts)


def value_to_string(value) -> str:
    """JsonValueToString(): rapidjson's PrettyWriter text (4-space indent), TF's float format."""
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) > _FLOAT_MAX:
            return format_double(value)
        return format_float32(value)
    return json.dumps(value, indent=4, ensure_ascii=False)


# ---------------------------------------------------------------- classify / regress requests


def examples_from_json(doc: dict) -> np.ndarray:
    """FillClassifyRegressRequestFromJson(), then InputToSerializedExampleTensor() (util.cc): the
    request's `examples` as a vector of serialized tf.train.Example protos, the tensor TF Serving
    feeds to a classify or regress signature. With a `context`, each is the serialized context
    followed by the serialized example, which parses as the two merged (the example's features
    win)."""
    context = _example(doc["context"]) if "context" in doc else b""
    if "examples" not in doc:
        # The same text for classify and regress: json_tensor.cc has one template for both.
        raise _format_error(
            doc, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    return np.array([context + _example(value) for value in examples], dtype=object)


def _example(value) -> bytes:
    """MakeExampleFromJsonObject(): a JSON object as a serialized tf.train.Example."""
    if not isinstance(value, dict):
        raise invalid("Example must be JSON object but got JSON ", _json_type(value))
    example = example_pb2.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)
    return example.SerializeToString()


def _add_to_feature(value, name: str, feature) -> None:
    """AddValueToFeature(): one JSON value appended to the feature's list, whose kind the first
    value decides. Integers beyond 64 bits are doubles to rapidjson, so floats here too."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        value = float(value) if abs(value) < 2**1024 else math.copysign(math.inf, value)
    if isinstance(value, (dict, str)):
        kind = "bytes_list"
    else:
        kind = "float_list" if isinstance(value, float) else "int64_list"
    current = feature.WhichOneof("kind")
    if current is not None and current != kind:
        expected = current.removesuffix("_list")
        raise invalid(f"Unexpected element type in feature: {name} expecting type: {expected}")
    if isinstance(value, dict):
        feature.bytes_list.value.append(_decode_b64(value))
    elif isinstance(value, str):
        feature.bytes_list.value.append(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, float):
        feature.float_list.value.append(value)
    elif value >= 2**63:
        raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    else:
        feature.int64_list.value.append(int(value))  # True and False are 1 and 0


# ---------------------------------------------------------------- writing the response


def format_float32(value: float) -> str:
    """WriteDecimal<float>(): "%g", else 9 digits if that does not round-trip; "1" becomes "1.0"."""
    return _decimal(value, 9, lambda v: array.array("f", [v])[0])  # v as a C float


def format_double(value: float) -> str:
    """WriteDecimal<double>(): as format_float32 with 17 digits."""
    return _decimal(value, 17, float)


def _decimal(value: float, digits: int, stored) -> str:
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
    text = f"{value:g}"
    if stored(float(text)) != stored(value):
        text = f"{value:.{digits}g}"
    return text if "." in text or "e" in text else text + ".0"


def _float32_texts(flat: np.ndarray) -> list[str]:
    """format_float32() over an array: the round-trip check rounds every "%g" text to float32
    in one go (array.array("f") converts as C and numpy do)."""
    values = flat.astype(np.float64).tolist()
    if not np.isfinite(flat).all():
        return [format_float32(v) for v in values]
    texts = [f"{v:g}" for v in values]
    back = array.array("f", [float(t) for t in texts])
    texts = [t if b == v else f"{v:.9g}" for t, b, v in zip(texts, back, values, strict=True)]
    return [t if "." in t or "e" in t else t + ".0" for t in texts]


def _values(array: np.ndarray, bytes_as_b64: bool) -> list[str]:
    """Every value of the array, flattened, as JSON text."""
    flat = array.ravel()
    kind = array.dtype.kind
    if array.dtype == np.float32:
        return _float32_texts(flat)
    if kind == "f":
        return [format_double(v) for v in flat.tolist()]
    if kind in "iu":
        return [str(v) for v in flat.tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    data = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat.tolist()]
    if bytes_as_b64:
        return ['{"b64": "' + base64.b64encode(d).decode("ascii") + '"}' for d in data]
    return [_string(d) for d in data]


def _write(shape: tuple, values: list[str], offset: int, indent: int | None) -> str:
    """AddTensorValues() through rapidjson's PrettyWriter: the values from `offset` on, indented
    by `indent` (None: on one line).

    Built a level at a time, innermost lists first: far quicker than a call per list for a
    28x28x1 image (the predict_image answer's mnist_image)."""
    if 0 in shape:  # every list from the first empty one down is written "[]"
        outer = shape[: shape.index(0)]
        return _write(outer, ["[]"] * math.prod(outer), 0, indent)
    items = values[offset : offset + math.prod(shape)]
    for level in reversed(range(len(shape))):
        n = shape[level]
        if indent is None:
            start, sep, end = "[", ", ", "]"
        else:
            inner = "\n" + " " * (indent + 4 * level)
            start, sep, end = "[" + inner + "    ", "," + inner + "    ", inner + "]"
        items = [start + sep.join(items[i : i + n]) + end for i in range(0, len(items), n)]
    return items[0]


def make_json(outputs: dict[str, np.ndarray], fmt: str) -> str:
    """MakeJsonFromTensors(): the response body for the request's format."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    values = {n: _values(outputs[n], n.endswith("_bytes")) for n in names}
    if fmt == COLUMNAR:
        if len(names) == 1:
            text = _write(outputs[names[0]].shape, values[names[0]], 0, 4)
            return '{\n    "outputs": ' + text + "\n}"
        items = []
        for n in names:
            text = _write(outputs[n].shape, values[n], 0, 8)
            items.append("        " + json.dumps(n) + ": " + text)
        return '{\n    "outputs": {\n' + ",\n".join(items) + "\n    }\n}"
    batch = 0
    for n in names:
        shape = outputs[n].shape
        if not shape:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if shape[0] < 1:
            raise invalid(f"Tensor name: {n} has invalid batch size: {shape[0]}")
        if batch and shape[0] != batch:
            raise invalid(
                f"Tensor name: {n} has inconsistent batch size: {shape[0]} expecting: {batch}"
            )
        batch = shape[0]
    rows = []
    per_row = {n: math.prod(outputs[n].shape[1:]) for n in names}
    for i in range(batch):
        texts = [_write(outputs[n].shape[1:], values[n], i * per_row[n], None) for n in names]
        if len(names) == 1:
            rows.append("        " + texts[0])
        else:
            fields = [
                f"            {json.dumps(n)}: {t}" for n, t in zip(names, texts, strict=True)
            ]
            rows.append("        {\n" + ",\n".join(fields) + "\n        }")
    return '{\n    "predictions": [\n' + ",\n".join(rows) + "\n    ]\n}"


def classification_json(results: list[list[tuple[bytes, float]]]) -> str:
    """MakeJsonFromClassificationResult(): {"results": [[[label, score], ...], ...]}, written as
    its PrettyWriter writes it (each example's list on one line, the outer list left open)."""
    if not results:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    examples = []
    for classes in results:
        pairs = [f"[{_string(label)}, {format_float32(score)}]" for label, score in classes]
        examples.append("[" + ", ".join(pairs) + "]")
    return '{\n    "results": [' + ", ".join(examples) + "\n    ]\n}"


def regression_json(values: list[float]) -> str:
    """MakeJsonFromRegressionResult(): {"results": [value, ...]} on one line."""
    if not values:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    return '{\n    "results": [' + ", ".join(format_float32(v) for v in values) + "]\n}"


def _string(data: bytes) -> str:
    return json.dumps(data.decode("utf-8", errors="replace"), ensure_ascii=False)


def error_json(message: str) -> str:
    """MakeJsonFromStatus(): {"error": "<message>"} through rapidjson's PrettyWriter."""
    return '{\n    "error": ' + json.dumps(message, ensure_ascii=False) + "\n}"
