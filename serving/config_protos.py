"""TF Serving's BatchingParameters and MonitoringConfig protos, as Python message classes.

tensorflow-serving-api ships the Python modules of ModelServerConfig but not of these two, so they
are built here from descriptors that mirror tensorflow/serving's own .proto files: the same
package, message names, field names, numbers, types and labels.

- MonitoringConfig, PrometheusConfig: tensorflow_serving/config/monitoring_config.proto
- BatchingParameters: tensorflow_serving/servables/tensorflow/session_bundle_config.proto
  (fields 1-9; the file's other messages are not needed to read a --batching_parameters_file)

text_format.Parse() on these classes is as strict as TF Serving's C++ TextFormat parser: a
misspelt field or a value of the wrong type is an error.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PACKAGE = "tensorflow.serving"

_Field = descriptor_pb2.FieldDescriptorProto
_INT64_VALUE = ".google.protobuf.Int64Value"
_STRING_VALUE = ".google.protobuf.StringValue"
_BOOL_VALUE = ".google.protobuf.BoolValue"

# (message, [(field, number, type, message type or "", repeated)]), as in the .proto files.
_MESSAGES = [
    (
        "PrometheusConfig",
        [
            ("enable", 1, _Field.TYPE_BOOL, "", False),
            ("path", 2, _Field.TYPE_STRING, "", False),
        ],
    ),
    (
        "MonitoringConfig",
        [("prometheus_config", 1, _Field.TYPE_MESSAGE, f".{PACKAGE}.PrometheusConfig", False)],
    ),
    (
        "BatchingParameters",
        [
            ("max_batch_size", 1, _Field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("batch_timeout_micros", 2, _Field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("max_enqueued_batches", 3, _Field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("num_batch_threads", 4, _Field.TYPE_MESSAGE, _INT64_VALUE, False),
            ("thread_pool_name", 5, _Field.TYPE_MESSAGE, _STRING_VALUE, False),
            ("allowed_batch_sizes", 6, _Field.TYPE_INT64, "", True),
            ("pad_variable_length_inputs", 7, _Field.TYPE_BOOL, "", False),
            ("enable_large_batch_splitting", 8, _Field.TYPE_MESSAGE, _BOOL_VALUE, False),
            ("max_execution_batch_size", 9, _Field.TYPE_MESSAGE, _INT64_VALUE, False),
        ],
    ),
]


def _message_classes() -> list[type]:
    # A pool of our own: the default pool may one day hold the real files under these names.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config_protos_mirror.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    for name, fields in _MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, field_type, type_name, repeated in fields:
            field = message.field.add(name=field_name, number=number, type=field_type)
            field.label = _Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL
            if type_name:
                field.type_name = type_name
    classes = message_factory.GetMessages([file], pool)
    return [classes[f"{PACKAGE}.{name}"] for name, _ in _MESSAGES]


PrometheusConfig, MonitoringConfig, BatchingParameters = _message_classes()
