"""The contract as data: OpenAPI document, HIF v1/v2 JSON Schemas and graph invariants.

Plain library (no pytest): the reference stack validates its requests against the same
OpenAPI document the suite certifies.
"""
