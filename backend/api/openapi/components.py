"""Named components for every body of the document: one JSON Schema namespace (pydantic's), named after
the models, shaped for client generators (no nullable defaults, no defaults on what clients send, shared
fields declared once)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

REF_PREFIX = "#/components/schemas/"


def is_model(model: object) -> bool:
    return isinstance(model, type) and issubclass(model, BaseModel)


@dataclass
class Components:
    """Named schemas for every body: one JSON Schema namespace (pydantic's), named after the models.

    A component is named after its model's title (the class name unless the model sets `title`), without
    a `Read` suffix: `UserRead` is `User`, the name clients know. Two models with one name fail the build."""

    schemas: dict[str, Any]
    refs: dict[tuple[type, str], dict[str, str]]

    @classmethod
    def of(cls, models: list[tuple[type[BaseModel], JsonSchemaMode]]) -> Components:
        refs, document = models_json_schema(models, ref_template=REF_PREFIX + "{model}", schema_generator=BodySchema)
        definitions: dict[str, Any] = document.get("$defs", {})
        names = {key: public_name(key, schema) for key, schema in definitions.items()}
        inputs = reachable([ref for (_, mode), ref in refs.items() if mode == "validation"], definitions)
        clashes = [name for name, count in Counter(names.values()).items() if count > 1]
        if clashes:
            raise ValueError(f"two models would share the component names {clashes}: give one a `title`")
        renamed = {REF_PREFIX + key: REF_PREFIX + name for key, name in names.items()}
        schemas = {
            names[key]: {**rename_refs(without_defaults(schema, key in inputs), renamed), "title": names[key]}
            for key, schema in definitions.items()
        }
        declare_inherited_once(schemas, model_classes([model for model, _ in models]))
        return cls(dict(sorted(schemas.items())), {pair: rename_refs(ref, renamed) for pair, ref in refs.items()})

    def name(self, ref: dict[str, str]) -> str:
        return ref["$ref"].removeprefix(REF_PREFIX)

    def resolve(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.schemas[self.name(ref)]


def model_classes(models: list[type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """Every model the bodies use, nested ones included, by component name."""
    found: dict[str, type[BaseModel]] = {}
    pending = list(models)
    while pending:
        model = pending.pop()
        name = public_name(model.__name__, {"title": model.model_config.get("title") or model.__name__})
        if name not in found:
            found[name] = model
            pending += [nested for field in model.model_fields.values() for nested in models_in(field.annotation)]
    return found


def models_in(annotation: Any) -> list[type[BaseModel]]:
    if is_model(annotation):
        return [annotation]
    return [model for argument in get_args(annotation) for model in models_in(argument)]


def declare_inherited_once(schemas: dict[str, Any], classes: dict[str, type[BaseModel]]) -> None:
    """A model that extends another body's model (`ExerciseRead(ExerciseSummary)`) is documented as that
    component plus its own fields (`allOf`): shared fields are declared once, and generators see the
    relation instead of two unrelated types."""
    names = {model: name for name, model in classes.items()}
    for name, model in classes.items():
        parent_name = names.get(model.__mro__[1])
        if name not in schemas or parent_name not in schemas:
            continue
        parent, child = schemas[parent_name], schemas[name]
        inherited = parent.get("properties", {})
        own: dict[str, Any] = {"type": "object", "properties": {}}
        own["properties"] = {key: value for key, value in child["properties"].items() if inherited.get(key) != value}
        if required := [field for field in child.get("required", ()) if field not in parent.get("required", ())]:
            own["required"] = required
        if "additionalProperties" in child:
            own["additionalProperties"] = child["additionalProperties"]
        described = {key: child[key] for key in ("title", "description") if key in child}
        schemas[name] = {**described, "allOf": [{"$ref": REF_PREFIX + parent_name}, own]}


def public_name(key: str, schema: dict[str, Any]) -> str:
    name = str(schema.get("title", key))
    if key.endswith("-Input"):  # a model whose input and output schemas differ: its input gets the suffix
        name += "Input"
    return name.removesuffix("Read") if name != "Read" else name


class BodySchema(GenerateJsonSchema):
    """pydantic's JSON Schema without a `title` on every field (the components keep theirs)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def reachable(refs: list[dict[str, str]], definitions: dict[str, Any]) -> set[str]:
    """The definitions `refs` lead to, directly or through other definitions."""
    found: set[str] = set()
    pending = [ref["$ref"].removeprefix(REF_PREFIX) for ref in refs]
    while pending:
        key = pending.pop()
        if key not in found:
            found.add(key)
            pending += [ref.removeprefix(REF_PREFIX) for ref in refs_in(definitions[key])]
    return found


def refs_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [value["$ref"]] if "$ref" in value else [ref for item in value.values() for ref in refs_in(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs_in(item)]
    return []


def without_defaults(schema: dict[str, Any], is_input: bool) -> dict[str, Any]:
    """`default: null` says no more than leaving the field out: dropped. In what clients send, every default
    moves into the description: generators read a default in a named schema as "always present", which
    holds for answers, not for requests (openapi-typescript would make the field required)."""
    properties = {}
    for name, field in schema.get("properties", {}).items():
        if "default" in field and (field["default"] is None or is_input):
            default = field["default"]
            field = {key: value for key, value in field.items() if key != "default"}
            if default is not None:
                note = f"Default: `{json.dumps(default)}`."
                field["description"] = f"{field['description']} {note}" if "description" in field else note
        properties[name] = field
    return {**schema, "properties": properties} if properties else schema


def rename_refs(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            key: renamed.get(item, item) if key == "$ref" else rename_refs(item, renamed) for key, item in value.items()
        }
    if isinstance(value, list):
        return [rename_refs(item, renamed) for item in value]
    return value
