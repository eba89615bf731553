"""Authentication and authorization: bearer tokens, principals, account grants."""

from gateway.auth.policy import AuthPolicy, bearer_token
from gateway.auth.tokens import (
    ALL_ACCOUNTS,
    Principal,
    TokenStore,
    TokenTableError,
    hash_token,
    new_token,
    parse_table,
)

__all__ = [
    "ALL_ACCOUNTS",
    "AuthPolicy",
    "Principal",
    "TokenStore",
    "TokenTableError",
    "bearer_token",
    "hash_token",
    "new_token",
    "parse_table",
]
