"""allowedIP holds on every interface: REST, the token exchange and GREP11 refuse an address
the instance's policy does not list, and the service administrator can let a locked-out
instance back in (admin API and CLI). The server listens on loopback, so a policy that lists
only 10.0.0.0/8 locks the test client out."""
import os
import subprocess

import grpc
import pytest
import requests
from ibm_cloud_sdk_core import ApiException
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator

from test_grep11 import G, grep11_code, stubs  # noqa: F401  (the stubs fixture)
from test_keyprotect_client import client
from test_keyprotect_instance_policies import new_instance, policies
from conftest import _binary



def token_for(server, apikey):
    return requests.post(f"{server.url}/identity/token",
                         data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": apikey})


def lock_out(kp, inst):
    kp.put_instance_policy(inst, policies(("allowedIP", {"enabled": True, "attributes": {"allowed_ip": ["10.0.0.0/8"]}})))


def test_allowed_ip_holds_on_rest_grep11_and_the_token_exchange(server, stubs):
    inst, apikey = new_instance(server)
    r = token_for(server, apikey)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    kp = client(server, BearerTokenAuthenticator(token))
    g = G(server, stubs)
    g.md = [("authorization", f"Bearer {token}")]  # no bluemix-instance: the token names it

    # Before the policy: GREP11 serves this instance's caller.
    aes = g("GenerateKey", Mech=g.mech(0x1080), Template=g.attrs(VALUE_LEN=32, ENCRYPT=True, DECRYPT=True)).KeyBytes
    iv = bytes(16)
    ct = g("EncryptSingle", Mech=g.mech(0x1085, iv), Key=g.kb(aes), Plain=b"secret").Ciphered
    assert g("DecryptSingle", Mech=g.mech(0x1085, iv), Key=g.kb(aes), Ciphered=ct).Plain == b"secret"

    lock_out(kp, inst)

    with pytest.raises(ApiException) as e:
        kp.get_keys(inst)
    assert e.value.status_code == 401 and "allowedIP" in e.value.http_response.text
    r = token_for(server, apikey)
    assert r.status_code == 401, r.text  # as the REST refusal: Key Protect answers 401
    assert "access_token" not in r.text and "allowedIP" in r.json()["errorMessage"]
    for rpc, fields in [
        ("GenerateKey", dict(Mech=g.mech(0x1080), Template=g.attrs(VALUE_LEN=32, ENCRYPT=True))),
        ("EncryptSingle", dict(Mech=g.mech(0x1085, iv), Key=g.kb(aes), Plain=b"secret")),
        ("DecryptSingle", dict(Mech=g.mech(0x1085, iv), Key=g.kb(aes), Ciphered=ct)),
        ("GenerateRandom", dict(Len=16)),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            g(rpc, **fields)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, (rpc, e.value)
        assert "allowedIP" in e.value.details(), rpc
        grep11_code(stubs, e.value)  # the refusal carries a Grep11Error detail

    # Another instance on the same node is not affected.
    other = G(server, stubs)
    assert len(other("GenerateRandom", Len=8).Rnd) == 8


def test_service_administrator_lets_a_locked_out_instance_back_in(server):
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    # Admin API.
    inst, apikey = new_instance(server)
    kp = client(server, BearerTokenAuthenticator(token_for(server, apikey).json()["access_token"]))
    lock_out(kp, inst)
    assert token_for(server, apikey).status_code == 401
    r = requests.delete(f"{server.admin_url}/admin/v1/instances/{inst}/allowed_ip", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401, "only the service administrator may lift the policy"
    assert token_for(server, apikey).status_code == 401
    r = requests.delete(f"{server.admin_url}/admin/v1/instances/{inst}/allowed_ip", headers=admin)
    assert r.status_code == 200 and r.json()["allowedIP_was_enabled"] is True, r.text
    assert token_for(server, apikey).status_code == 200
    assert kp.get_keys(inst).get_status_code() == 200
    r = kp.get_instance_policy(inst).get_result()
    pol = {p["policy_type"]: p for p in (r.json() if hasattr(r, "json") else r)["resources"]}
    assert pol["allowedIP"]["policy_data"]["enabled"] is False and pol["allowedIP"]["updatedBy"] == "admin"

    # CLI.
    inst, apikey = new_instance(server)
    kp = client(server, BearerTokenAuthenticator(token_for(server, apikey).json()["access_token"]))
    lock_out(kp, inst)
    env = {**os.environ, "STRONGROOM_ADMIN_TOKEN": server.admin_token}
    out = subprocess.run([_binary(), "instance", "--admin-url", server.admin_url, "clear-allowed-ip", inst],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "turned off" in out.stdout
    assert token_for(server, apikey).status_code == 200
