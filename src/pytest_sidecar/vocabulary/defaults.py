"""The contract's defaults and the suite's thresholds: one home for each figure."""

from __future__ import annotations

# CONTRACT §5: p95 explanation latency SLO per granularity, seconds.
SLO_S = {"sentence": 2.0, "token": 8.0}
SLO_QUANTILE = 0.95
MAX_CHAT_ERROR_RATE = 0.001  # chat success >= 99.9 % (CONTRACT §5)
# Completed traces an SLO verdict needs per granularity; fewer is INSUFFICIENT_DATA.
MIN_SAMPLES = 20
# Per-request limits a streamed chat is judged by for goodput and the capacity sweep (ms):
# the metrics vLLM's bench and GenAI-Perf take goodput limits on.
STREAM_LIMITS = ("ttft", "tpot", "e2e")
# The resilience score weighs each spec by the SLO its clauses protect, in nines (minus
# log10 of the SLO's error budget): chat success (99.9 %) 3.0, explanation latency (p95)
# 1.3. Clauses that keep chats answering under a fault protect the chat SLO; the rest
# (explainer faults, restarts, leases) the explanation SLO.
CHAT_SLO_CLAUSES = ("§2.1/", "§10/breaker", "§10/dependencies")

# CONTRACT §3's default token-bucket limits per (tenant, category), in force for a target
# that declares 'rate_limits' without figures for a category.
CONTRACT_RATE_LIMITS = {"read": {"rps": 50.0, "burst": 200.0}, "write": {"rps": 5.0, "burst": 20.0}}

# A target whose TTL is at most this many seconds can have its 410 tested in a spec.
SHORT_TTL_LIMIT_S = 60.0

# The target-file tenant key reserved for the rate-limit specs (tight limits): load and
# other specs never go through it, so their counts stay exact.
THROTTLE_TENANT = "c"

# The model the suite's chats name when the target file names none: the reference stack's
# fake upstream answers any name; a real deployment names one it serves (`model:`).
DEFAULT_MODEL = "sidecar-fake-1"

# The feature set a chat explains with when x-explain-features is absent (CONTRACT §2.1).
DEFAULT_FEATURESET = "sae-gpt4-2m"

# CONTRACT §5 backpressure: backlog seconds above which a granularity is at level >= 1
# (soft); hard is this times HARD_FACTOR.
SOFT_BACKLOG_S = {"sentence": 1.5, "token": 3.0}
HARD_FACTOR = 1.5
# The degradation ladder, in order (CONTRACT §5).
BACKPRESSURE_ACTIONS = ("token->sentence", "reduce-samples", "reduce-topk", "reduce-layers",
                        "saliency-fallback", "drop")
