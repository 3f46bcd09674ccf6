"""The tus routes are in the OpenAPI document (so .ci/fuzz.sh's schemathesis run fuzzes them):
each method with the headers it reads and answers, and its byte body (issue 18)."""


def operations(client):
    spec = client.get("/api/openapi.json").get_json()
    return spec["paths"]["/api/uploads/"], spec["paths"]["/api/uploads/{upload_id}/"]


def header_names(operation):
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]


def test_every_tus_method_is_documented_with_its_headers(client):
    collection, upload = operations(client)
    assert set(collection) == {"options", "post"} and set(upload) == {"head", "patch", "delete"}
    assert header_names(collection["post"]) == ["Tus-Resumable", "Upload-Length", "Upload-Metadata",
                                                "Upload-Checksum"]
    assert header_names(upload["patch"]) == ["Tus-Resumable", "Upload-Offset", "Upload-Checksum"]
    assert header_names(upload["head"]) == header_names(upload["delete"]) == ["Tus-Resumable"]
    path = [p for p in upload["patch"]["parameters"] if p["in"] == "path"]
    assert path == [{"in": "path", "name": "upload_id", "required": True, "schema": {"type": "string"},
                     "example": "f" * 32}]


def test_answers_name_their_headers_and_bodies(client):
    collection, upload = operations(client)
    created = collection["post"]["responses"]["201"]["headers"]
    assert {"Location", "Upload-Offset", "Upload-Expires", "Video-Id"} <= set(created)
    assert {"Tus-Version", "Tus-Max-Size", "Tus-Extension"} <= set(collection["options"]["responses"]["204"]["headers"])
    assert {"Upload-Offset", "Upload-Length"} <= set(upload["head"]["responses"]["200"]["headers"])
    assert not any("content" in answer for answer in upload["head"]["responses"].values())  # HEAD: no body
    assert {"409", "413", "415", "423", "460"} <= set(upload["patch"]["responses"])
    assert {"429", "507"} <= set(collection["post"]["responses"])
    body = upload["patch"]["requestBody"]
    assert body["required"] is True
    assert body["content"] == {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    assert collection["post"]["requestBody"]["required"] is False  # creation-with-upload is optional
    assert upload["patch"]["security"] == [{"cookieAuth": []}, {"bearerAuth": []}]
