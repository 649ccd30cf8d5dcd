"""An OAuth exchange code signs in only the browser that went through the sign-in (login CSRF).

The provider's leg is bound to the browser (`state` and the binding cookie), but the code the callback hands
the SPA (`/auth/callback?code=...`) was redeemable by anyone: an attacker signs in with their own provider
account, stops at that redirect, and sends the victim the link within 60 s. The victim's SPA trades the
code and the victim works signed in as the attacker, whose account then holds their submissions, their
tutor conversations and any GitHub account they connect. The callback now gives its browser a cookie bound
to the code (a MAC of it), and the exchange needs it.
"""

from __future__ import annotations

from quart import Quart
from quart.testing import QuartClient

from tests.api import test_oauth as oauth_flows

# The OAuth API tests' fixtures (fake providers, an app configured for them, a browser), here too.
github, google, oauth_settings = oauth_flows.github, oauth_flows.google, oauth_flows.oauth_settings
oauth_app, browser = oauth_flows.oauth_app, oauth_flows.browser


async def test_an_exchange_code_signs_in_only_the_browser_that_signed_in(
    oauth_app: Quart, browser: QuartClient
) -> None:
    code = oauth_flows.spa_params(await oauth_flows.sign_in(browser, "github"), provider="github")["code"]
    victim = oauth_app.test_client()
    planted = await oauth_flows.exchange(victim, code)
    assert planted.status_code == 400 and (await planted.get_json())["code"] == "token_invalid"
    assert "access_token" not in {cookie.split("=", 1)[0] for cookie in planted.headers.getlist("Set-Cookie")}
    forged = await victim.post(
        "/api/v1/auth/oauth/exchange", json={"code": code}, headers={"Cookie": f"oauth_exchange={code}"}
    )
    assert forged.status_code == 400
    mine = await oauth_flows.exchange(browser, code)  # the refused attempts did not use the code up
    assert mine.status_code == 200, await mine.get_json()
