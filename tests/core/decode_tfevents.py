#!/usr/bin/env python3
"""Decode a TensorBoard event file independently of core/dg_tfevents.c, for tests/core/test_dg_tfevents.c.

Reads the TFRecord framing (length, masked CRC32C of the length, data, masked CRC32C of the data), checks both
CRCs with its own table-driven CRC32C, parses each record as tensorflow.Event with python3-protobuf (message
classes built from a descriptor written here, the fields TensorBoard's event.proto and summary.proto give them),
checks that protobuf re-serializes the record to the same bytes (no unknown or misencoded fields), and prints
one line per record:
    version WALL_TIME FILE_VERSION
    scalars WALL_TIME STEP TAG=VALUE ...   (VALUE as float32 printed with repr, exact)
Exit status 1 with a message on stderr on any mismatch.
"""
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool

try:
    from google.protobuf.message_factory import GetMessageClass
except ImportError:  # protobuf < 4.21
    from google.protobuf import message_factory

    def GetMessageClass(desc):
        return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def event_class():
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="digits_event_test.proto", package="tensorflow", syntax="proto3")
    summary = fd.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".tensorflow.Summary.Value")
    event = fd.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, oneof_index=0,
                    type_name=".tensorflow.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return GetMessageClass(pool.FindMessageTypeByName("tensorflow.Event"))


def fail(msg):
    print("decode_tfevents: " + msg, file=sys.stderr)
    sys.exit(1)


def main(path):
    Event = event_class()
    data = open(path, "rb").read()
    at, k = 0, 0
    while at < len(data):
        if len(data) - at < 12:
            fail(f"record {k}: truncated header")
        head = data[at:at + 8]
        (n,) = struct.unpack("<Q", head)
        (hc,) = struct.unpack("<I", data[at + 8:at + 12])
        if hc != masked(head):
            fail(f"record {k}: length CRC {hc:#x}, expected {masked(head):#x}")
        if len(data) - at < 12 + n + 4:
            fail(f"record {k}: truncated data")
        body = data[at + 12:at + 12 + n]
        (dc,) = struct.unpack("<I", data[at + 12 + n:at + 16 + n])
        if dc != masked(body):
            fail(f"record {k}: data CRC {dc:#x}, expected {masked(body):#x}")
        ev = Event()
        ev.ParseFromString(body)
        if ev.SerializeToString() != body:
            fail(f"record {k}: protobuf re-encodes the event differently")
        what = ev.WhichOneof("what")
        if what == "file_version":
            print(f"version {ev.wall_time!r} {ev.file_version}")
        elif what == "summary":
            vals = " ".join(f"{v.tag}={v.simple_value!r}" for v in ev.summary.value)
            print(f"scalars {ev.wall_time!r} {ev.step} {vals}")
        else:
            fail(f"record {k}: neither file_version nor summary")
        at += 16 + n
        k += 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: decode_tfevents.py FILE")
    main(sys.argv[1])
