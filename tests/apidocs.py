"""The served API documents in tests: /api/docs fetched from a real server."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import ujson
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from portfolio_ws import constants as c
from tests import ROOT

BASE = "https://portfolio-ws.invalid/api/docs/"


ASYNCAPI, OPENAPI = BASE + "asyncapi.yaml", BASE + "openapi.yaml"


TOKEN = "t0ken-for-the-docs-test"


class Docs:
    """Validators built from the two documents, with refs resolved across them."""

    def __init__(self, asyncapi: dict[str, Any], openapi: dict[str, Any]) -> None:
        self.asyncapi, self.openapi = asyncapi, openapi
        self.registry: Registry = Registry().with_resources([
            (ASYNCAPI, Resource.from_contents(asyncapi, default_specification=DRAFT7)),
            (OPENAPI, Resource.from_contents(openapi, default_specification=DRAFT202012)),
        ])
        channel = asyncapi["channels"][c.WEBSOCKET_PATH]
        self.server_messages = self._payloads(channel["subscribe"]["message"]["oneOf"])
        self.client_messages = self._payloads(channel["publish"]["message"]["oneOf"])
        self.seen: set[str] = set()
        self.error_codes: set[str] = set()

    def _payloads(self, refs: list[dict[str, str]]) -> dict[str, str]:
        """Message name -> absolute ref of its payload schema."""
        out = {}
        for ref in refs:
            name = ref["$ref"].rsplit("/", 1)[1]
            payload = self.asyncapi["components"]["messages"][name]["payload"]["$ref"]
            out[name] = ASYNCAPI + payload
        return out

    def _errors(self, schema_ref: str, instance: Any) -> list[str]:
        validator = jsonschema.Draft202012Validator({"$ref": schema_ref}, registry=self.registry)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]

    def server_message(self, message: dict[str, Any]) -> str:
        """The one documented message ``message`` is; fails unless exactly one matches."""
        matches = [name for name, ref in self.server_messages.items() if not self._errors(ref, message)]
        if len(matches) != 1:
            why = {name: self._errors(ref, message)[:3] for name, ref in self.server_messages.items()
                   if name.lower().startswith(str(message.get("type", "")).replace("_", "")[:4])}
            raise AssertionError(f"{len(matches)} documented messages match {message}: {matches or why}")
        self.seen.add(matches[0])
        return matches[0]

    def client_message(self, message: dict[str, Any]) -> bool:
        return any(not self._errors(ref, message) for ref in self.client_messages.values())

    def _path(self, path: str) -> dict[str, Any]:
        """The document's entry of ``path``, matching templates (``/api/v1/users/{userId}``) too."""
        for template, entry in self.openapi["paths"].items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                return dict(entry)
        return {}

    def http(self, path: str, method: str, response: Any) -> None:
        """``response`` (a tornado HTTPResponse) validates against its documented response."""
        operation = self._path(path).get(method.lower())
        json = response.headers.get("Content-Type", "").startswith("application/json")
        body = ujson.loads(response.body) if json and response.body else None
        if operation is None:  # 404 for unknown paths, 405 for unknown methods
            assert response.code in (404, 405), (path, method, response.code)
            assert_no_errors(self._errors(OPENAPI + "#/components/schemas/Error", body), path, body)
            return
        documented = operation["responses"].get(str(response.code))
        assert documented is not None, f"{method} {path} answered {response.code}, which is not documented"
        if "$ref" in documented:
            documented = self.openapi["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        for name, header in documented.get("headers", {}).items():
            value = response.headers.get(name)
            assert value is not None, f"{method} {path} {response.code}: no {name} header"
            assert_no_errors(jsonschema.Draft202012Validator(header["schema"]).iter_errors(value), path, value)
        if "content" not in documented:  # 204
            assert not response.body, f"{method} {path} {response.code} has a body"
            return
        [(media, content)] = documented["content"].items()
        assert response.headers["Content-Type"].split(";")[0] == media
        if media == "application/json":
            schema = content["schema"]
            ref = OPENAPI + schema["$ref"] if "$ref" in schema else None
            errors = self._errors(ref, body) if ref else [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft202012Validator(schema, registry=self.registry).iter_errors(body)]
            assert_no_errors(errors, f"{method} {path} {response.code}", body)


def assert_no_errors(errors: Any, where: str, instance: Any) -> None:
    errors = [str(e) for e in errors]
    assert not errors, f"{where}: {errors[:5]} in {instance}"


async def fetch_docs(server: Any) -> Docs:
    texts, responses = {}, {}
    for name in ("asyncapi.yaml", "openapi.yaml"):
        response = responses[name] = await server.fetch(f"/api/docs/{name}")
        assert response.code == 200 and response.headers["Content-Type"] == "application/yaml; charset=utf-8"
        texts[name] = response.body.decode()
        assert texts[name] == (ROOT / "portfolio_ws" / "apidocs" / name).read_text()
        assert (ROOT / "docs" / name).read_text() == texts[name], f"docs/{name} must be the same document"
    docs = Docs(yaml.safe_load(texts["asyncapi.yaml"]), yaml.safe_load(texts["openapi.yaml"]))
    for name, response in responses.items():  # serving them is documented too
        docs.http(f"/api/docs/{name}", "GET", response)
    return docs
