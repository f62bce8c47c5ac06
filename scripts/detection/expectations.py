"""Which specs must fail for each opt-in defect of the reference stack: parts of node ids.

Each entry must be matched by a failure that cites the defect's own clause (matrix.judge);
any other spec failing is a cascade (unless it fails with a typed DECLARED_BUT_MISSING
line citing the defect's clause). Keep each list to the specs that certify the defect's
clause; an entry that may fail but need not goes in MAY_FAIL, with why.
"""

from __future__ import annotations

TW = "test_trace_workflow.py::"
LIFECYCLE = TW + "test_lifecycle_reaches_complete_with_a_valid_graph"
METADATA = TW + "test_an_explained_chat_carries_its_explanation_metadata"
STREAMED = TW + "test_a_streamed_chat_opens_a_trace_from_its_header"
BAD_INPUT = "test_error_responses.py::test_bad_input_gets_an_exact_json_error"
CORRELATION = "test_correlation_and_logging.py::test_every_response_carries_correlation_ids"
ISOLATION = ("test_security_tenant_isolation.py::"
             "test_a_foreign_trace_is_indistinguishable_from_a_missing_one")
RBAC = "test_gateway_rbac.py::test_scope_matrix"
WEBHOOK_SIGNED = "test_webhooks.py::test_delivery_is_signed_and_describes_the_event"
WEBHOOK_RETRIED = "test_webhooks.py::test_failed_deliveries_are_retried_with_the_same_event_id"
READINESS = "test_health_readiness.py::test_readiness_names_an_unavailable_dependency_and_recovers"
V2 = "test_explanation_v2.py::"
RATE_WRITE = "test_rate_limits.py::test_write_burst_then_429_that_opens_no_trace_and_recovers"
RATE_READ = "test_rate_limits.py::test_reads_have_their_own_bucket"
OBSERVABILITY = "test_observability.py::"
AUDIT = "test_audit_pii.py::"
EXPLANATION_ROUTE = "GET /v1/chat/completions/{completion_id}/explanation"
UNKNOWN_EXPLANATION = "GET /v1/chat/completions/{unknown_completion_id}/explanation"
CHAOS_EXPLAINER = "test_explainer_faults.py::"
OPENAI = "test_openai_sdk.py::"
SDK_REFUSALS = OPENAI + "test_refusals_surface_as_the_sdks_error_classes"
CHAOS_UPSTREAM = "test_upstream_faults.py::"
DEPENDENCIES = ("test_dependencies.py::"
                "test_a_dependency_down_refuses_explain_keeps_chat_and_loses_nothing")

EXPECTED: dict[str, tuple[str, ...]] = {
    "error-without-request-id": (CORRELATION,),
    "trace-id-not-echoed": (CORRELATION,),
    "no-explanation-metadata": (METADATA,),
    "metadata-status-pending": (METADATA,),
    "explain-mode-unchecked": (TW + "test_invalid_explain_headers_are_400[x-explain-mode",
                               BAD_INPUT + "[bad-explain-mode]"),
    "budget-unchecked": (TW + "test_invalid_explain_headers_are_400[x-explain-budget",
                         BAD_INPUT + "[bad-budget]"),
    "client-trace-id-overwrites": (TW + "test_a_reused_client_trace_id_is_409",),
    "client-trace-id-ignored": (TW + "test_a_reused_client_trace_id_is_409",
                                BAD_INPUT + "[bad-trace-id]"),
    "schema-errors-400": (*(f"{BAD_INPUT}[{case}]" for case in (
        "not-an-object", "model-not-string", "messages-empty", "role-unknown",
        "stream-not-bool")), SDK_REFUSALS + "[empty-messages]"),
    "finish-reason-stop-on-cut": (OPENAI + "test_a_cut_answer_says_length",
                                  OPENAI + "test_a_cut_stream_says_length"),
    "no-body-cap": (BAD_INPUT + "[oversize-body]",),
    "stream-without-done": (
        STREAMED, "test_chat_completions.py::test_a_streamed_chat_sends_openai_chunks_then_done"),
    "status-without-stage": (LIFECYCLE,),
    "status-epoch-timestamps": (LIFECYCLE,),
    "unknown-trace-500": (TW + "test_a_chat_without_explain_mode_opens_no_trace", ISOLATION),
    "graph-before-complete": (TW + "test_graph_is_404_until_the_trace_is_complete",),
    "canceled-graph-404": (TW + "test_cancel_mid_way_never_produces_a_graph",),
    "ttl-not-enforced": (TW + "test_graph_is_410_after_the_ttl",),
    "graph-ignores-gzip": (TW + "test_the_graph_honours_accept_encoding_gzip",),
    # The v2 envelope is built from the same graph; §4 defines both.
    "hif-dangling-node": (LIFECYCLE, STREAMED, V2 + "test_pending_then_a_valid_v2_envelope"),
    "hif-weight-over-one": (LIFECYCLE, STREAMED, V2 + "test_pending_then_a_valid_v2_envelope"),
    "hif-wrong-version": (LIFECYCLE, STREAMED, "test_api_versioning.py::test_runtime_graphs"),
    "hif-token-outputs-short": (LIFECYCLE + "[token", STREAMED,
                                V2 + "test_pending_then_a_valid_v2_envelope"),
    "sse-no-terminal-event": (TW + "test_sse_stream_delivers_state_changes",
                              TW + "test_the_stream_of_a_canceled_trace_ends_with_an_error"),
    "sse-no-event-ids": (TW + "test_sse_stream_delivers_state_changes",),
    "webhook-signature-over-json": (WEBHOOK_SIGNED,),
    "webhook-new-event-id-per-retry": (WEBHOOK_RETRIED,),
    # Never retrying also means giving up after one attempt, not five.
    "webhook-no-retry": (WEBHOOK_RETRIED,
                         "test_webhooks.py::test_delivery_gives_up_after_five_attempts"),
    "ssrf-dotted-only": ("test_webhooks.py::test_ssrf_targets_are_refused_without_a_connection",),
    "webhook-secret-echoed": (WEBHOOK_SIGNED,),
    "webhook-retries-forever": ("test_webhooks.py::test_delivery_gives_up_after_five_attempts",),
    "cancel-terminal-202": (TW + "test_cancel_of_a_terminal_trace_is_409",),
    "cancel-still-publishes": (TW + "test_cancel_mid_way_never_produces_a_graph",),
    "idempotency-across-tenants": ("test_idempotency.py::test_another_tenants_identical_key",),
    "idempotency-ignores-body": ("test_idempotency.py::test_same_key_with_another_body_is_422",),
    "v2-foreign-completion": (V2 + "test_unknown_and_foreign_completions_are_404",),
    "readyz-ignores-store": (READINESS + "[status_store]", DEPENDENCIES + "[status_store]"),
    "healthz-follows-readiness": (READINESS,),
    "405-without-allow": (BAD_INPUT + "[unknown-method]",),
    "cors-reflects-any-origin": ("test_cors.py::test_other_origins_get_no_allow_headers",),
    # No authentication on the route also means no tenant check: a foreign completion shows.
    "explanation-route-unauthenticated": (
        *(f"{RBAC}[{route} as {caller}]" for route in (EXPLANATION_ROUTE, UNKNOWN_EXPLANATION)
          for caller in ("no_token", "malformed", "unknown_token")),
        V2 + "test_unknown_and_foreign_completions_are_404"),
    "read-token-can-cancel": (f"{RBAC}[DELETE /v1/traces/{{trace_id}} as tenant_a_read]",),
    "foreign-status-readable": (ISOLATION + "[GET status]",),
    "foreign-cancel-allowed": (ISOLATION + "[DELETE]",),
    "foreign-trace-403": (ISOLATION,),
    "token-in-query-accepted": (BAD_INPUT + "[token-in-query]",),
    "tenant-header-honored": (
        "test_security_tenant_isolation.py::test_request_headers_cannot_change_the_tenant",),
    "denied-requests-spend-tokens": (RATE_WRITE,),
    "retry-after-zero": (RATE_WRITE, RATE_READ),
    "rate-limit-shared-by-tenants": (RATE_WRITE, RATE_READ),
    "rate-limited-opens-trace": (RATE_WRITE,),
    "metrics-trace-id-label": (OBSERVABILITY + "test_the_expositions_follow_the_rules",),
    "status-get-counted-twice": (OBSERVABILITY + "test_counters_move_by_exactly",),
    "no-rate-limit-counter": (OBSERVABILITY + "test_a_429_moves_the_rejection_counter",),
    "audit-raw-snippet": (AUDIT + "test_no_line_holds_a_token_or_unscrubbed_pii",),
    "audit-no-deny-lines": (AUDIT + "test_refused_requests_are_journaled_as_rbac_deny",),
    "log-user-text": (
        "test_correlation_and_logging.py::test_the_service_log_holds_no_token_or_user_text",),
    "store-without-expires-at": ("test_shared_files.py::test_status_store_records_carry",),
    "chaos-lease-ignored": (CHAOS_EXPLAINER + "test_a_flag_whose_lease_lapsed_is_off",),
    "fail-attribution-completes": (
        CHAOS_EXPLAINER + "test_fail_attribution_fails_new_traces_spares_old_ones",),
    "drop-s3-completes": (CHAOS_EXPLAINER + "test_drop_s3_fails_traces_and_never_completes",),
    "upstream-error-html": (CHAOS_UPSTREAM + "test_upstream_errors_at_p_percent_are_502s",),
    "upstream-timeout-ignored": (CHAOS_UPSTREAM + "test_upstream_latency_past_the_timeout",),
    "breaker-never-opens": (CHAOS_UPSTREAM + "test_the_breaker_opens_after_the_threshold",),
    "explain-accepted-when-store-down": (DEPENDENCIES + "[status_store]",),
    "stream-cut-completes": ("test_upstream_stream_cut.py::test_an_upstream_stream_cut",),
    "queue-in-memory": ("test_restart_recovery.py::test_no_acknowledged_trace_is_lost",),
    "webhooks-in-memory": ("test_restart_recovery.py::test_no_acknowledged_trace_is_lost",),
    "stall-fails-jobs": ("test_restart_recovery.py::test_a_frozen_target_thaws",),
}
AUTHENTICATED_ROUTES = (
    "POST /v1/chat/completions", "GET /v1/models", EXPLANATION_ROUTE, UNKNOWN_EXPLANATION,
    "GET /v1/traces/{trace_id}/status",
    "GET /v1/traces/{trace_id}/graph", "GET /v1/traces/{trace_id}/stream",
    "POST /v1/traces/{trace_id}/webhooks", "DELETE /v1/traces/{trace_id}")
EXPECTED["tokens-not-checked"] = (
    *(f"{RBAC}[{route} as {caller}]" for route in AUTHENTICATED_ROUTES
      for caller in ("no_token", "malformed")), SDK_REFUSALS + "[not-bearer]",
    "test_error_responses.py::test_missing_or_malformed_credentials_are_401_with_a_challenge",
)
EXPECTED["query-token-authenticates"] = (
    "test_error_responses.py::test_a_token_in_the_query_string_alone_is_refused",)
# A dead explainer is judged where a finished trace is needed: the lifecycle spec names
# §2.2; every other spec that needs one stops at the same typed precondition, and the
# isolation, access-control, audit and rate-limit specs judge queued traces on their own.
EXPECTED["explainer-never-runs"] = (LIFECYCLE,)

EXPECTED.update({
    "trace-ids-sequential": (TW + "test_trace_ids_the_gateway_makes_are_unguessable",),
    "error-leaks-exception": (BAD_INPUT + "[malformed-json]",),
    "stream-error-as-complete": (
        TW + "test_the_stream_of_a_canceled_trace_ends_with_an_error_event",),
    "webhook-naive-ts": (WEBHOOK_SIGNED,),
    "webhook-events-ignored": (WEBHOOK_SIGNED,),
    "v2-epoch-created-at": (V2 + "test_pending_then_a_valid_v2_envelope",),
    "405-wrong-allow": (BAD_INPUT + "[unknown-method]",),
    "cors-prefix-match": ("test_cors.py::test_other_origins_get_no_allow_headers",),
})

# Specs of a defect's list that may fail but need not, each with why: "exactly, both
# ways" asks every other listed spec to fail.
MAY_FAIL: dict[str, dict[str, str]] = {
    # The v2 envelope is built from the stored graph, keeping only incidences whose nodes
    # exist and that join an output to a feature: a dangling id or a missing output token
    # may leave it valid.
    "hif-dangling-node": {V2 + "test_pending_then_a_valid_v2_envelope":
                          "the envelope drops an incidence's unknown node ids"},
    "hif-token-outputs-short": {
        V2 + "test_pending_then_a_valid_v2_envelope":
            "the envelope has no per-token count to miss",
        STREAMED: "the streamed spec counts output tokens only when the stream reports "
                  "usage, which the embedded upstream's stream does not"},
    "hif-weight-over-one": {V2 + "test_pending_then_a_valid_v2_envelope":
                            "the heavy incidence may be one the envelope does not keep "
                            "(it keeps only those joining an output to a feature)"},
}

EXPECTED["unknown-token-401"] = (  # every authenticated route, and the SDK's class
    *(f"{RBAC}[{route} as unknown_token]" for route in AUTHENTICATED_ROUTES),
    SDK_REFUSALS + "[unknown-token]")
