"""The security suite's index: items of issue 8 whose tests live next to the feature they protect.

Each entry names the test that holds the item; this test fails if one is renamed or deleted, so the
suite cannot silently lose coverage. The sandbox escapes are kept in tests/integrations/test_sandbox.py
(they need the sandbox fixtures), webhook signatures in tests/api/test_github.py.
"""

from __future__ import annotations

import importlib

import pytest

COVERED_ELSEWHERE = {
    "JWT alg none, wrong key, nbf, aud, iss, type, refresh as access, other sub": [
        "tests.api.test_auth.test_tampered_tokens_are_401"
    ],
    "JWT expired": ["tests.api.test_auth.test_expired_token_is_401_token_expired"],
    "refresh reuse": [
        "tests.api.test_auth.test_refresh_rotates_and_reuse_kills_the_session",
        "tests.api.test_auth.test_concurrent_refreshes_with_one_token_let_exactly_one_win",
    ],
    "revoked session": [
        "tests.api.test_auth.test_logout_revokes_the_access_token_at_once",
        "tests.api.test_auth.test_logout_all_ends_every_session",
        "tests.api.test_auth.test_password_change_keeps_this_session_and_ends_the_others",
        "tests.api.test_auth.test_disabled_account_cannot_sign_in_or_use_its_tokens",
        "tests.fault.test_redis_outage.test_redis_outage_keeps_sessions_honest_and_recovers",
    ],
    "CSRF with the header, bearer without": [
        "tests.api.test_auth.test_cookie_auth_needs_csrf_on_unsafe_methods",
        "tests.api.test_auth.test_bearer_needs_no_csrf_and_wins_over_cookies",
    ],
    "lockout and per-IP limits": [
        "tests.api.test_auth.test_five_failures_lock_the_account_even_for_the_right_password",
        "tests.api.test_auth.test_login_is_limited_per_ip",
        "tests.api.test_auth.test_register_is_limited_per_ip",
        "tests.security.test_accounts.test_resend_verification_is_202_always_and_sends_three_emails_an_hour",
        "tests.test_cache.test_rate_limit_counts_each_client_ip_separately",
        "tests.fault.test_redis_outage.test_redis_outage_lockout_still_applies",
    ],
    "login answers alike": ["tests.api.test_auth.test_login_wrong_password_unknown_email_answer_alike"],
    "reset token single use and expiry": [
        "tests.api.test_auth.test_password_reset_flow_single_use_and_revokes_sessions",
        "tests.api.test_auth.test_expired_reset_token_is_400_token_expired",
        "tests.api.test_oauth.test_exchange_code_works_once",
    ],
    "no token in any URL or Location header": [
        "tests.api.test_oauth.test_no_redirect_carries_a_token",
        "tests.api.test_oauth.test_redirect_to_kept_only_when_a_path",
    ],
    "mass assignment through PATCH /users/me": ["tests.api.test_users.test_patch_me_refuses_server_owned_fields"],
    "HTML stripped from profile fields": ["tests.api.test_users.test_patch_me_updates_fields_and_strips_html"],
    "body-size limit and inputs never echoed": [
        "tests.api.test_errors.test_body_over_one_mib_is_413",
        "tests.api.test_errors.test_validation_error_is_422_with_fields_and_no_input_echo",
    ],
    "no exception text in a 500": [
        "tests.api.test_errors.test_unexpected_error_is_generic_500_and_logged_with_request_id"
    ],
    "hidden tests and solutions never leak": [
        "tests.api.test_exercises.test_submissions_never_reveal_hidden_tests_or_solution",
        "tests.api.test_exercises.test_hint_tailored_by_llm_never_sends_the_solution",
    ],
    "secrets at rest and in exports": [
        "tests.api.test_oauth.test_provider_tokens_are_stored_encrypted",
        "tests.api.test_github.test_connect_flow_stores_repo_token_encrypted",
        "tests.api.test_users.test_export_has_every_section_and_no_secrets",
    ],
    "sandbox escapes": [
        "tests.integrations.test_sandbox.test_run_fork_bomb_is_contained",
        "tests.integrations.test_sandbox.test_run_huge_allocation_is_memory_error",
        "tests.integrations.test_sandbox.test_run_huge_file_is_refused",
        "tests.integrations.test_sandbox.test_run_detached_grandchild_is_gone_after_the_run",
        "tests.integrations.test_sandbox.test_run_never_sees_the_server_environment",
        "tests.integrations.test_sandbox.test_run_cannot_read_files_outside_its_dir",
        "tests.integrations.test_sandbox.test_run_cannot_open_a_socket_to_a_host_port",
        "tests.integrations.test_sandbox.test_run_fake_reports_cannot_make_a_wrong_solution_pass",
        "tests.integrations.test_sandbox.test_run_values_that_lie_about_equality_fail",
        "tests.integrations.test_sandbox.test_run_killing_the_harness_is_never_a_pass",
        "tests.integrations.test_sandbox.test_piston_fake_report_on_stdout_cannot_pass",
    ],
    "LLM prompt injection in chat": ["tests.api.test_chat.test_prompt_injection_does_not_change_the_system_prompt"],
    "webhook signature checks": [
        "tests.api.test_github.test_webhook_with_bad_or_missing_signature_is_unauthorized",
        "tests.api.test_github.test_webhook_signed_with_another_secret_is_unauthorized",
        "tests.api.test_github.test_webhook_without_configured_secret_is_unauthorized",
        "tests.api.test_github.test_webhook_replayed_delivery_is_ignored",
    ],
    "unsafe production settings refused": ["tests.test_config.test_unsafe_production_settings_are_refused"],
}


@pytest.mark.parametrize("item", sorted(COVERED_ELSEWHERE))
def test_security_item_is_still_tested_where_it_lives(item: str) -> None:
    for dotted in COVERED_ELSEWHERE[item]:
        module_name, test_name = dotted.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module_name), test_name, None)), f"{item}: {dotted} is gone"
