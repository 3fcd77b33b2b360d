import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Effect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFECT_UNSPECIFIED: _ClassVar[Effect]
    EFFECT_ALLOW: _ClassVar[Effect]
    EFFECT_DENY: _ClassVar[Effect]
    EFFECT_THROTTLE: _ClassVar[Effect]
    EFFECT_FLAG: _ClassVar[Effect]
EFFECT_UNSPECIFIED: Effect
EFFECT_ALLOW: Effect
EFFECT_DENY: Effect
EFFECT_THROTTLE: Effect
EFFECT_FLAG: Effect

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("id", "ts", "model", "prompt", "max_tokens", "prompt_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    ts: float
    model: str
    prompt: str
    max_tokens: int
    prompt_tokens: int
    def __init__(self, id: _Optional[str] = ..., ts: _Optional[float] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., max_tokens: _Optional[int] = ..., prompt_tokens: _Optional[int] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("id", "org", "age_days", "verification", "tier", "payment_fingerprint", "labels")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORG_FIELD_NUMBER: _ClassVar[int]
    AGE_DAYS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    org: str
    age_days: float
    verification: str
    tier: str
    payment_fingerprint: str
    labels: StringList
    def __init__(self, id: _Optional[str] = ..., org: _Optional[str] = ..., age_days: _Optional[float] = ..., verification: _Optional[str] = ..., tier: _Optional[str] = ..., payment_fingerprint: _Optional[str] = ..., labels: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "scopes")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    id: str
    scopes: StringList
    def __init__(self, id: _Optional[str] = ..., scopes: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...

class Client(_message.Message):
    __slots__ = ("ip", "country", "asn", "user_agent")
    IP_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ASN_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    ip: str
    country: str
    asn: int
    user_agent: str
    def __init__(self, ip: _Optional[str] = ..., country: _Optional[str] = ..., asn: _Optional[int] = ..., user_agent: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "cached_input_tokens", "reasoning_tokens", "model")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    model: str
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("request", "account", "api_key", "client", "usage", "explain", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    request: Request
    account: Account
    api_key: ApiKey
    client: Client
    usage: Usage
    explain: bool
    attributes: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, request: _Optional[_Union[Request, _Mapping]] = ..., account: _Optional[_Union[Account, _Mapping]] = ..., api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., client: _Optional[_Union[Client, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., explain: _Optional[bool] = ..., attributes: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class LimitState(_message.Message):
    __slots__ = ("limit_id", "key", "used", "max", "remaining", "reset_seconds", "over", "error")
    LIMIT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OVER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    limit_id: str
    key: str
    used: float
    max: float
    remaining: float
    reset_seconds: float
    over: bool
    error: str
    def __init__(self, limit_id: _Optional[str] = ..., key: _Optional[str] = ..., used: _Optional[float] = ..., max: _Optional[float] = ..., remaining: _Optional[float] = ..., reset_seconds: _Optional[float] = ..., over: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class MeasureState(_message.Message):
    __slots__ = ("measure_id", "key", "value", "charged", "error")
    MEASURE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    measure_id: str
    key: str
    value: float
    charged: bool
    error: str
    def __init__(self, measure_id: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[float] = ..., charged: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class ShadowMatch(_message.Message):
    __slots__ = ("rule_id", "effect", "reason")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    effect: Effect
    reason: str
    def __init__(self, rule_id: _Optional[str] = ..., effect: _Optional[_Union[Effect, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("effect", "http_status", "reason", "rule_ids", "headers", "flags", "limits", "shadow_matches", "policy_version", "explanation_json", "request_id", "retry_after_seconds", "measures", "exempt", "notes")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MATCHES_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    EXEMPT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    effect: Effect
    http_status: int
    reason: str
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    headers: _containers.ScalarMap[str, str]
    flags: _containers.RepeatedScalarFieldContainer[str]
    limits: _containers.RepeatedCompositeFieldContainer[LimitState]
    shadow_matches: _containers.RepeatedCompositeFieldContainer[ShadowMatch]
    policy_version: str
    explanation_json: str
    request_id: str
    retry_after_seconds: float
    measures: _containers.RepeatedCompositeFieldContainer[MeasureState]
    exempt: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, effect: _Optional[_Union[Effect, str]] = ..., http_status: _Optional[int] = ..., reason: _Optional[str] = ..., rule_ids: _Optional[_Iterable[str]] = ..., headers: _Optional[_Mapping[str, str]] = ..., flags: _Optional[_Iterable[str]] = ..., limits: _Optional[_Iterable[_Union[LimitState, _Mapping]]] = ..., shadow_matches: _Optional[_Iterable[_Union[ShadowMatch, _Mapping]]] = ..., policy_version: _Optional[str] = ..., explanation_json: _Optional[str] = ..., request_id: _Optional[str] = ..., retry_after_seconds: _Optional[float] = ..., measures: _Optional[_Iterable[_Union[MeasureState, _Mapping]]] = ..., exempt: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("request_id", "usage")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    usage: Usage
    def __init__(self, request_id: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    def __init__(self, applied: _Optional[bool] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("version", "files", "rule_ids", "limit_ids", "loaded_at", "last_reload_error", "measure_ids", "store", "attributes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_IDS_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    MEASURE_IDS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    version: str
    files: _containers.RepeatedScalarFieldContainer[str]
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    limit_ids: _containers.RepeatedScalarFieldContainer[str]
    loaded_at: _timestamp_pb2.Timestamp
    last_reload_error: str
    measure_ids: _containers.RepeatedScalarFieldContainer[str]
    store: StoreStatus
    attributes: _containers.RepeatedCompositeFieldContainer[DeclaredAttribute]
    def __init__(self, version: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., rule_ids: _Optional[_Iterable[str]] = ..., limit_ids: _Optional[_Iterable[str]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reload_error: _Optional[str] = ..., measure_ids: _Optional[_Iterable[str]] = ..., store: _Optional[_Union[StoreStatus, _Mapping]] = ..., attributes: _Optional[_Iterable[_Union[DeclaredAttribute, _Mapping]]] = ...) -> None: ...

class DeclaredAttribute(_message.Message):
    __slots__ = ("path", "type", "api_key", "header", "all_headers", "jwt_claim", "envoy_metadata_namespace", "envoy_metadata_key", "context_extension", "asgi")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ALL_HEADERS_FIELD_NUMBER: _ClassVar[int]
    JWT_CLAIM_FIELD_NUMBER: _ClassVar[int]
    ENVOY_METADATA_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ENVOY_METADATA_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    ASGI_FIELD_NUMBER: _ClassVar[int]
    path: str
    type: str
    api_key: str
    header: str
    all_headers: bool
    jwt_claim: str
    envoy_metadata_namespace: str
    envoy_metadata_key: str
    context_extension: str
    asgi: str
    def __init__(self, path: _Optional[str] = ..., type: _Optional[str] = ..., api_key: _Optional[str] = ..., header: _Optional[str] = ..., all_headers: _Optional[bool] = ..., jwt_claim: _Optional[str] = ..., envoy_metadata_namespace: _Optional[str] = ..., envoy_metadata_key: _Optional[str] = ..., context_extension: _Optional[str] = ..., asgi: _Optional[str] = ...) -> None: ...

class StoreStatus(_message.Message):
    __slots__ = ("backend", "url", "state", "last_error", "failing_since", "errors", "outages")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    OUTAGES_FIELD_NUMBER: _ClassVar[int]
    backend: str
    url: str
    state: str
    last_error: str
    failing_since: _timestamp_pb2.Timestamp
    errors: int
    outages: int
    def __init__(self, backend: _Optional[str] = ..., url: _Optional[str] = ..., state: _Optional[str] = ..., last_error: _Optional[str] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., errors: _Optional[int] = ..., outages: _Optional[int] = ...) -> None: ...
