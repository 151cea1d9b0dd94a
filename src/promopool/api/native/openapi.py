"""What the OpenAPI document says beyond the handlers' signatures: the error responses each route can give
(in the one native error body), the examples of every operation (``Documented``, from examples.EXAMPLES) and
the request bodies of the import endpoint, which reads its body itself.

Declared so that clients, and the schema fuzz in tests/reliability, can rely on every response matching the
document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.typing import FieldDefinition

from promopool.api.errors import error_body
from promopool.api.native.examples import EXAMPLES, Examples
from promopool.api.native.schemas import CONTROL, NO_NUL, VISIBLE_TEXT, ErrorOut
from promopool.domain.codes import MAX_CODE_LENGTH

# Status -> when a native route answers it (docs/design.md, "Errors").
ERROR_STATUSES = {
    400: "Invalid input: malformed JSON, a missing or wrong field, a bad parameter (`invalid_input`,"
    " `invalid_code`), or a generation request too large for its pattern's key space"
    " (`key_space_too_small`).",
    401: "No or unknown API key (`unauthenticated`).",
    403: "The API key is read-only and this request writes (`read_only_key`).",
    404: "No such pool, code, redemption, lease, job or API key in this account (`not_found`,"
    " `pool_not_found`, `code_not_found`, `redemption_not_found`, `lease_not_found`, `job_not_found`,"
    " `api_key_not_found`), or no usable code (`code_unusable`).",
    409: "A conflict: the pool is exhausted or expired, the code is expired or used up for its holder, the"
    " redemption was already rolled back, the lease ran out or was released, a normalization collision, a"
    " generation job already running on the pool (`conflict`), the API key to revoke is the account's only"
    " one (`last_api_key`).",
    413: "The body is larger than the configured limit; refused before it is read (`payload_too_large`).",
    415: "The body's content type is not accepted here (`unsupported_media_type`).",
    422: "The Idempotency-Key was already used for another request (`idempotency_key_reused`).",
    429: "Too many failed attempts from this key or address (`rate_limited`); see `Retry-After`.",
    503: "The database cannot be reached (`storage_unavailable`) or a lock was not granted in time"
    " (`storage_busy`, with `Retry-After`); retry later.",
}

# One example body per status, in the native error body (api/errors.py's error_body), as the API words it.
ERROR_EXAMPLES = {
    400: error_body(
        "invalid_input",
        "Validation failed for POST /v1/pools/7/generate",
        {"errors": [{"message": "Expected `int` >= 1", "key": "count", "source": "body"}]},
    ),
    401: error_body("unauthenticated", "unknown API key"),
    403: error_body("read_only_key", "this API key is read-only: use a read-write key for this request"),
    404: error_body("pool_not_found", "pool 7 not found", {"pool_id": 7}),
    409: error_body("pool_exhausted", "pool 7 has no available code left", {"pool_id": 7}),
    413: error_body("payload_too_large", "Request Entity Too Large"),
    415: error_body("unsupported_media_type", "send codes as application/json, text/plain or text/csv"),
    422: error_body(
        "idempotency_key_reused",
        "Idempotency-Key 'order-42' was already used for another request",
        {"key": "order-42"},
    ),
    429: error_body("rate_limited", "too many failed code attempts; try again later", {"retry_after": 60}),
    503: error_body(
        "storage_busy",
        "the database is busy: another process held its write lock too long; retry",
        {"retry_after": 1},
    ),
}

# What every authenticated route can answer, whatever it does.
ALWAYS = (401, 503)

# A 503 on a write (docs/design.md, "What a 503 means"): `storage_busy` did nothing, but after
# `storage_unavailable` the write may have committed (the answer was lost, not necessarily the write).
WRITE_UNAVAILABLE = (
    "The database cannot be reached (`storage_unavailable`) or a lock was not granted in time"
    " (`storage_busy`, with `Retry-After`). The outcome of this write is unknown: it may have been done."
)
KEYED = (
    "Retry with the same `Idempotency-Key`: if it was done, the retry gets its first answer (with an"
    " `Idempotent-Replayed: true` header) and nothing is done again; if not, it is done now. Without a key a"
    " retry may do it twice."
)
REPEATABLE = "Repeating it as it is is safe: {}."
# A keyed DELETE answers a Response[None], which the framework would document with a JSON body: no body.
NO_CONTENT = {
    204: ResponseSpec(
        None, description="Done; with an `Idempotency-Key` done before, `Idempotent-Replayed: true`."
    )
}


def error_responses(*statuses: int, write: str | None = None) -> dict[int, ResponseSpec]:
    """The native error body declared for ``statuses`` plus ALWAYS (replaces the framework's own 400). A
    write says what its 503 means and how to retry it (``write``: KEYED, REPEATABLE, or its own words)."""
    descriptions = dict(ERROR_STATUSES)
    if write is not None:
        descriptions[503] = f"{WRITE_UNAVAILABLE} {write}"
    return {
        status: ResponseSpec(
            data_container=ErrorOut, description=descriptions[status], generate_examples=False
        )
        for status in sorted({*statuses, *ALWAYS})
    }


_CODE = Schema(
    type=OpenAPIType.STRING,
    min_length=1,
    max_length=MAX_CODE_LENGTH,
    pattern=VISIBLE_TEXT,
    description="Surrounding whitespace is stripped; an invalid value refuses the upload (see skip_invalid).",
)
_CODE_LIST = Schema(type=OpenAPIType.ARRAY, items=_CODE)
_LINE = f"[^{CONTROL}]{{0,{MAX_CODE_LENGTH}}}"
TEXT_LINES = f"^({_LINE}\\r?\\n)*({_LINE})?$"
_LINES = Schema(
    type=OpenAPIType.STRING,
    pattern=TEXT_LINES,
    description="One code per line (CSV: the first column); blank lines are ignored.",
)


@dataclass
class Documented(Operation):
    """An operation with its examples: the request body's and each answer's from examples.EXAMPLES (by
    operation id), an error answer's otherwise from ERROR_EXAMPLES (error_responses declares them all in the
    native error body). A response with several media types takes a dict of examples by media type. A route
    that reads its parameters itself (PersonaClick's) gets them, and its body, from the same table."""

    def __post_init__(self) -> None:
        examples = EXAMPLES.get(self.operation_id or "", Examples())
        if examples.query:
            self.parameters = [*(self.parameters or []), *examples.query]
        if examples.body is not None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=examples.body)}
            )
        if isinstance(self.request_body, RequestBody):
            content = self.request_body.content
            if any(_nullable(media.schema) for media in content.values()):
                self.request_body.required = False  # a body that may be null may be left out (the claim's)
            for media_type in content.keys() & examples.requests.keys():
                content[media_type] = _with_example(content[media_type], examples.requests[media_type])
        for status, response in (self.responses or {}).items():
            if not isinstance(response, OpenAPIResponse) or not response.content:
                continue
            code = int(status)
            if code in examples.responses:
                example = examples.responses[code]
            elif code in ERROR_EXAMPLES:
                example = ERROR_EXAMPLES[code]
            else:
                continue
            several = len(response.content) > 1
            for media_type, media in response.content.items():
                response.content[media_type] = _with_example(
                    media, example[media_type] if several else example
                )


def _nullable(schema: Schema | Reference | None) -> bool:
    return isinstance(schema, Schema) and any(
        isinstance(one, Schema) and one.type == OpenAPIType.NULL for one in schema.one_of or ()
    )


@dataclass
class ExampleMediaType(OpenAPIMediaType):
    """A media type whose example is written as given: the framework drops every null from the dicts of the
    document, examples included, which would make an example contradict its schema."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        schema["example"] = self.example
        return schema


def _with_example(media: OpenAPIMediaType, example: Any) -> ExampleMediaType:
    return ExampleMediaType(
        schema=media.schema, example=example, examples=media.examples, encoding=media.encoding
    )


@dataclass
class ImportOperation(Documented):
    """The import endpoint streams its body, so its accepted bodies are declared here by hand."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            _CODE_LIST,
                            Schema(
                                type=OpenAPIType.OBJECT,
                                properties={"codes": _CODE_LIST},
                                required=["codes"],
                                additional_properties=False,
                            ),
                        ]
                    )
                ),
                "text/plain": OpenAPIMediaType(schema=_LINES),
                "text/csv": OpenAPIMediaType(schema=_LINES),
            },
        )
        super().__post_init__()


@dataclass
class OptionalBodyOperation(Documented):
    """A route whose body may be left out (the claim: no body is the plain claim); the framework documents
    every body as required."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
        super().__post_init__()


@dataclass
class ExportOperation(Documented):
    """The export streams CSV or JSON lines (by its ``format`` parameter); the framework would document a
    streamed answer as JSON, so its 200 is declared here by hand."""

    def __post_init__(self) -> None:
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description="The pool's codes: CSV (`format=csv`) or one JSON object per line"
                " (`format=jsonl`).",
                content={
                    "text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                    "application/x-ndjson": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                },
            ),
        }
        super().__post_init__()


# The native routes' credentials (the health checks and the dialects authenticate otherwise, or not at all).
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """A struct that refuses unknown fields (``forbid_unknown_fields``) is documented as closed
    (``additionalProperties: false``); the framework's own plugin leaves every object open."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        _restore_union_patterns(field_definition.type_, schema)
        _restore_zero_bounds(field_definition.type_, schema)
        _restore_item_rules(field_definition.type_, schema)
        _state_no_nul(field_definition.type_, schema, schema_creator)
        return schema


class MetadataValue:
    """Names the component of a JSON value with no NUL in any string or key (see schemas.Metadata)."""


def _state_no_nul(struct: type, schema: Schema, schema_creator: SchemaCreator) -> None:
    """A field marked ``no_nul`` (schemas.Metadata) is documented as what check_metadata enforces: no key or
    string at any depth holds a NUL. Its values refer to the recursive component MetadataValue, whose
    keywords each apply to their own JSON type only."""
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    for field in info.fields:
        members = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        marked = any(
            isinstance(t, msgspec.inspect.Metadata) and (t.extra or {}).get("no_nul") for t in members
        )
        prop = (schema.properties or {}).get(field.encode_name)
        if not marked or not isinstance(prop, Schema):
            continue
        value = FieldDefinition.from_annotation(MetadataValue)
        registry = schema_creator.schema_registry
        component = registry.get_schema_for_field_definition(value)
        component.pattern = NO_NUL
        component.property_names = Schema(pattern=NO_NUL)
        component.additional_properties = registry.get_reference_for_field_definition(value)
        component.items = registry.get_reference_for_field_definition(value)
        component.description = MetadataValue.__doc__
        prop.property_names = Schema(pattern=NO_NUL)
        prop.additional_properties = registry.get_reference_for_field_definition(value)


def _restore_union_patterns(struct: type, schema: Schema) -> None:
    """The framework drops a string's pattern when the string is one member of a union (``DecimalText |
    int | float``); put it back, so the document states what the decoder enforces."""
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    for field in info.fields:
        if not isinstance(field.type, msgspec.inspect.UnionType):
            continue
        patterns = [
            t.pattern for t in field.type.types if isinstance(t, msgspec.inspect.StrType) and t.pattern
        ]
        prop = (schema.properties or {}).get(field.encode_name)
        if not patterns or not isinstance(prop, Schema) or not prop.one_of:
            continue
        for member in prop.one_of:
            if isinstance(member, Schema) and member.type == OpenAPIType.STRING and member.pattern is None:
                member.pattern = patterns[0]


def _restore_zero_bounds(struct: type, schema: Schema) -> None:
    """The framework leaves a falsy bound out of the document (``ge=0`` gives no ``minimum``); put it back,
    so the document states what the decoder enforces."""
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    for field in info.fields:
        members = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        prop = (schema.properties or {}).get(field.encode_name)
        if not isinstance(prop, Schema):
            continue
        for member in members:
            if isinstance(member, msgspec.inspect.Metadata):  # Annotated[int, Meta(...)]
                member = member.type
            if isinstance(member, msgspec.inspect.IntType) and member.ge == 0 and prop.minimum is None:
                prop.minimum = 0


def _restore_item_rules(struct: type, schema: Schema) -> None:
    """The framework documents a list of constrained strings (``list[Reference]``) as a list of any strings;
    state the items' rules, which the decoder enforces."""
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    for field in info.fields:
        members = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        prop = (schema.properties or {}).get(field.encode_name)
        if not isinstance(prop, Schema):
            continue
        for member in members:
            if isinstance(member, msgspec.inspect.Metadata):
                member = member.type
            if not isinstance(member, msgspec.inspect.ListType):
                continue
            item = member.item_type
            if not isinstance(item, msgspec.inspect.StrType):
                continue
            for target in [*(prop.one_of or []), prop]:
                if isinstance(target, Schema) and target.type == OpenAPIType.ARRAY:
                    target.items = Schema(
                        type=OpenAPIType.STRING,
                        min_length=item.min_length,
                        max_length=item.max_length,
                        pattern=item.pattern,
                    )
