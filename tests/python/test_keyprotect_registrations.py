"""Registrations, sync and key events. The public SDK lists registrations; the
service-to-service writes (removed from IBM's SDKs in 2024) are sent with `requests`."""
import urllib.parse

import pytest
import requests
from ibm_cloud_sdk_core import ApiException

from test_keyprotect_client import client, data, error_code, key_body

REG = "application/vnd.ibm.kms.registration_input+json"


def reg_url(server, key, crn):
    return f"{server.url}/api/v2/keys/{key}/registrations/{urllib.parse.quote(crn, safe='')}"


def headers(server):
    return {"Authorization": f"Bearer {server.token}", "Bluemix-Instance": server.instance, "Content-Type": REG}


def register(server, key, crn, method="POST", **fields):
    body = {"metadata": {"collectionType": REG, "collectionTotal": 1}, "resources": [fields]}
    return requests.request(method, reg_url(server, key, crn), headers=headers(server), json=body)


def test_registrations_protect_keys(server):
    kp = client(server)
    inst = server.instance
    key = data(kp.create_key(inst, key_body(name="py-registered", extractable=False)))["resources"][0]["id"]
    crn_a = "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:bucket-1::"
    crn_b = "crn:v1:bluemix:public:databases-for-postgresql:us-south:a/acct:db-7::"
    r = register(server, key, crn_a, description="bucket", registrationMetadata="m")
    assert r.status_code == 201, r.text
    assert r.json()["resources"][0]["resourceCrn"] == crn_a
    assert register(server, key, crn_a).status_code == 409, "POST of an existing registration"
    assert register(server, key, crn_b, preventKeyDeletion=False).status_code == 201
    bad = register(server, key, crn_b, method="PATCH", keyVersionId="9b2ae0a2-0e0e-4c3f-9f37-3f8e3c1c9c01")
    assert (bad.status_code, bad.json()["resources"][0]["reasons"][0]["code"]) == (422, "KEY_VERSION_INVALID")
    assert register(server, key, "not-a-crn").status_code == 400
    # PUT replaces a registration whole (its metadata goes with what the body leaves out);
    # PATCH is refused for one that does not exist, and creates nothing.
    put = register(server, key, crn_a, method="PUT", description="bucket, replaced")
    assert put.status_code == 200, put.text
    assert put.json()["resources"][0]["description"] == "bucket, replaced"
    assert put.json()["resources"][0].get("registrationMetadata") in (None, "")
    missing = "crn:v1:bluemix:public:cloud-object-storage:global:a/acct:bucket-9::"
    absent = register(server, key, missing, method="PATCH", description="x")
    assert (absent.status_code, absent.json()["resources"][0]["reasons"][0]["code"]) == (404, "REGISTRATION_NOT_FOUND_ERR")

    regs = data(kp.get_registrations(key, inst, total_count=True))
    assert regs["metadata"]["totalCount"] == 2
    first = regs["resources"][0]
    assert first["keyId"] == key and first["keyName"] == "py-registered" and first["keyVersion"]["id"] == key
    wildcard = "crn:v1:bluemix:public:cloud-object-storage:*"
    assert [x["resourceCrn"] for x in data(kp.get_registrations(key, inst, url_encoded_resource_crn_query=wildcard))["resources"]] == [crn_a]
    everything = data(kp.get_registrations_all_keys(inst, url_encoded_resource_crn_query="crn:v1:bluemix:public:databases-for-postgresql:us-south:a/acct:db-7:*"))
    assert [x["resourceCrn"] for x in everything["resources"]] == [crn_b]
    with pytest.raises(ApiException):
        kp.get_registrations_all_keys(inst, url_encoded_resource_crn_query="crn:v1:*")

    with pytest.raises(ApiException) as e:
        kp.delete_key(key, inst)
    assert (e.value.status_code, error_code(e.value)) == (409, "PROTECTED_RESOURCE_ERR")
    assert register(server, key, crn_b, method="PATCH", preventKeyDeletion=True).status_code == 200
    assert data(kp.get_registrations(key, inst, prevent_key_deletion=True))["resources"][0]["resourceCrn"] == crn_b
    with pytest.raises(ApiException) as e:
        kp.delete_key(key, inst, force=True)
    assert (e.value.status_code, error_code(e.value)) == (409, "PREV_KEY_DEL_ERR")
    assert requests.delete(reg_url(server, key, crn_b), headers=headers(server)).status_code == 204
    assert kp.delete_key(key, inst, force=True).get_status_code() in (200, 204)


def test_sync_and_event_ack(server):
    kp = client(server)
    inst = server.instance
    key = data(kp.create_key(inst, key_body(name="py-sync", extractable=False)))["resources"][0]["id"]
    assert kp.sync_associated_resources(key, inst).get_status_code() == 204
    with pytest.raises(ApiException) as e:
        kp.sync_associated_resources(key, inst)
    assert (e.value.status_code, error_code(e.value)) == (409, "REQ_TOO_EARLY_ERR")
    server.advance(3601)
    kp = client(server)
    assert kp.sync_associated_resources(key, inst).get_status_code() == 204
    ack = requests.post(f"{server.url}/api/v2/event_ack", headers=dict(headers(server), **{"Content-Type": "application/vnd.ibm.kms.event_acknowledge+json"}),
                        json={"eventId": "ev-1", "adopterKeyState": 1, "timestamp": "2026-11-22T10:00:00Z", "keyStateData": {"keyVersion": key}})
    assert ack.status_code == 204, ack.text
    bad = requests.post(f"{server.url}/api/v2/event_ack", headers=headers(server), json={"eventId": "ev-2", "timestamp": "yesterday"})
    assert bad.status_code == 400
