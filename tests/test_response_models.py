"""Every JSON route declares what it answers, so the OpenAPI document is complete (issue 9)."""

from __future__ import annotations

from haochaping.app import create_app

# Answers that are not JSON: a file download, and the empty 204s of signing out and of
# ending a webhook subscription.
NOT_JSON = {
    ("get", "/api/v1/work-orders/{work_order_id}/attachments/{attachment_id}"),
    ("post", "/api/v1/auth/logout"),
    ("delete", "/api/v1/webhooks/{webhook_id}"),
    ("delete", "/api/v1/windows/{window_code}/serving"),
    ("get", "/api/v1/reports/{report_id}/download"),  # the workbook
    ("get", "/api/v1/appraisal/adjustments/{adjustment_id}/file"),
    ("get", "/api/v1/appraisal/scores/download"),
}


def test_every_json_route_has_a_response_schema(settings):
    doc = create_app(settings).openapi()
    missing = []
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in operations.items():
            if (method, path) in NOT_JSON:
                continue
            ok = [r for s, r in op["responses"].items() if s.startswith("2")]
            schema = ok[0].get("content", {}).get("application/json", {}).get("schema", {})
            if not schema:
                missing.append(f"{method.upper()} {path}")
    assert missing == []
    assert len(doc["paths"]) > 40
