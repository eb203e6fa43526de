"""Job APIs in other vendors' documented shapes, for the generic provider's examples:
Salesforce Bulk API 2.0 ingest jobs, GitHub Actions workflow runs, HubSpot CRM
imports. Each body is the vendor's own shape for a job at a point of its life: a
queued tenth, then running, then its final state.
"""

from __future__ import annotations

from typing import Any

# The simulator's final status (FullStory/Talkdesk words) → each vendor's word.
FINAL = {
    "salesforce": {"COMPLETED": "JobComplete", "FAILED": "Failed", "CANCELED": "Aborted"},
    "github": {"COMPLETED": "success", "FAILED": "failure", "CANCELED": "cancelled"},
    "hubspot": {"COMPLETED": "DONE", "FAILED": "FAILED", "CANCELED": "CANCELED"},
}
ROUTES = {
    "salesforce": "/services/data/v60.0/jobs/ingest/{id}",
    "github": "/repos/{owner}/{repo}/actions/runs/{id}",
    "hubspot": "/crm/v3/imports/{id}",
}
# A static token each route accepts (besides tokens from /oauth/token).
STATIC_TOKENS = {p: f"sim-{p}-token" for p in ROUTES}


def phase(elapsed: float, duration: float) -> str:
    if elapsed >= duration:
        return "done"
    return "queued" if elapsed < duration * 0.1 else "running"


def body(
    provider: str,
    *,
    job_id: str,
    final_status: str,
    total: int,
    failed: int,
    created: str,
    now_iso: str,
    finished: str,
    elapsed: float,
    duration: float,
) -> dict[str, Any]:
    step = phase(elapsed, duration)
    frac = 1.0 if step == "done" else max(0.0, (elapsed - duration * 0.1) / (duration * 0.9))
    final = FINAL[provider].get(final_status, next(iter(FINAL[provider].values())))
    if provider == "salesforce":
        state = {"queued": "UploadComplete", "running": "InProgress", "done": final}[step]
        out: dict[str, Any] = {
            "id": job_id,
            "operation": "insert",
            "object": "Account",
            "createdDate": created,
            "systemModstamp": finished if step == "done" else now_iso,
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": 60.0,
            "jobType": "V2Ingest",
            "numberRecordsProcessed": int(total * frac),
            "numberRecordsFailed": int(failed * frac),
            "retries": 0,
        }
        if state == "Failed":
            out["errorMessage"] = "InvalidBatch : simulated failure"
        return out
    if provider == "github":
        status = {"queued": "queued", "running": "in_progress", "done": "completed"}[step]
        return {
            "id": int(job_id) if job_id.isdigit() else job_id,
            "name": "import",
            "status": status,
            "conclusion": final if step == "done" else None,
            "created_at": created,
            "updated_at": finished if step == "done" else now_iso,
            "run_attempt": 1,
        }
    state = {"queued": "STARTED", "running": "PROCESSING", "done": final}[step]
    return {
        "id": job_id,
        "state": state,
        "importName": f"{job_id}.csv",
        "createdAt": created,
        "updatedAt": finished if step == "done" else now_iso,
        "optOutImport": False,
        "metadata": {
            "counters": {
                "TOTAL_ROWS": total,
                "CREATED_OBJECTS": int((total - failed) * frac),
                "ERRORS": int(failed * frac),
            },
            "fileIds": ["1"],
            "objectLists": [],
        },
    }
