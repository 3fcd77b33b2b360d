from policy_engine.proto.policyengine.v1 import policy_pb2 as _policy_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStateRequest(_message.Message):
    __slots__ = ("name", "key", "max")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    name: str
    key: str
    max: float
    def __init__(self, name: _Optional[str] = ..., key: _Optional[str] = ..., max: _Optional[float] = ...) -> None: ...

class KeyState(_message.Message):
    __slots__ = ("name", "block", "kind", "key", "used", "max", "remaining", "full", "window_seconds", "reset_seconds", "clear_seconds", "policy_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    block: str
    kind: str
    key: str
    used: float
    max: float
    remaining: float
    full: bool
    window_seconds: float
    reset_seconds: float
    clear_seconds: float
    policy_version: str
    def __init__(self, name: _Optional[str] = ..., block: _Optional[str] = ..., kind: _Optional[str] = ..., key: _Optional[str] = ..., used: _Optional[float] = ..., max: _Optional[float] = ..., remaining: _Optional[float] = ..., full: _Optional[bool] = ..., window_seconds: _Optional[float] = ..., reset_seconds: _Optional[float] = ..., clear_seconds: _Optional[float] = ..., policy_version: _Optional[str] = ...) -> None: ...

class ResetStateRequest(_message.Message):
    __slots__ = ("name", "key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    key: str
    def __init__(self, name: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ResetStateResponse(_message.Message):
    __slots__ = ("existed", "before")
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    before: KeyState
    def __init__(self, existed: _Optional[bool] = ..., before: _Optional[_Union[KeyState, _Mapping]] = ...) -> None: ...
