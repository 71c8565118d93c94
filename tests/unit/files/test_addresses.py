"""The rule for where an upload job may fetch from: public addresses only, unless
OPENDMS_UPLOAD_HOSTS says more."""

from __future__ import annotations

import ipaddress

import pytest

from opendms.files.addresses import UploadHosts, embedded_ipv4, not_public

NOT_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # AWS, GCP, Azure IMDS
    ("100.100.100.200", "shared"),  # Alibaba Cloud metadata
    ("192.0.0.192", "reserved"),  # Oracle Cloud metadata
    ("168.63.129.16", "metadata"),  # Azure wire server
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fd00:ec2::254", "unique-local"),  # AWS IMDS over IPv6
    ("fc00::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("::127.0.0.1", "reserved"),  # IPv4-compatible
    ("::ffff:127.0.0.1", "loopback, inside an IPv6 address"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::7f00:1", "loopback, inside"),  # NAT64 of 127.0.0.1
    ("2002:c0a8:0101::1", "private, inside"),  # 6to4 of 192.168.1.1
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("text", "why"), NOT_PUBLIC)
def test_every_class_of_inside_address_is_not_public(text: str, why: str) -> None:
    found = not_public(ipaddress.ip_address(text))
    assert found is not None and why in found, (text, found)
    address = ipaddress.ip_address(text)
    assert UploadHosts("").refusal(text, [address]) is not None


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed_by_default(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert not_public(address) is None
    assert UploadHosts("").refusal("files.example.com", [address]) is None


def test_embedded_ipv4() -> None:
    v6 = ipaddress.IPv6Address
    assert embedded_ipv4(v6("::ffff:1.2.3.4")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(v6("64:ff9b::102:304")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(v6("2002:102:304::")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(v6("2606:4700::1")) is None
    assert embedded_ipv4(ipaddress.IPv4Address("1.2.3.4")) is None


def test_one_inside_address_in_the_answer_refuses_the_name() -> None:
    public, inside = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")
    refusal = UploadHosts("").refusal("mixed.example", [public, inside])
    assert refusal is not None and "10.0.0.7" in refusal and "private" in refusal
    assert UploadHosts("").refusal("nothing.example", []) is not None


def test_upload_hosts_widen_by_cidr_name_or_star() -> None:
    artifacts = ipaddress.ip_address("10.20.30.40")
    hosts = UploadHosts(" 10.20.0.0/16 , Artifacts.Corp. , 127.0.0.1")
    assert hosts.refusal("10.20.30.40", [artifacts]) is None
    assert hosts.refusal("10.21.0.1", [ipaddress.ip_address("10.21.0.1")]) is not None
    # a listed name may resolve anywhere; an unlisted one pointing at the same address may not
    assert hosts.refusal("artifacts.corp", [ipaddress.ip_address("192.168.9.9")]) is None
    assert hosts.refusal("evil.example", [ipaddress.ip_address("192.168.9.9")]) is not None
    # CIDRs match IPv4-mapped IPv6 answers too
    assert hosts.refusal("x", [ipaddress.ip_address("::ffff:127.0.0.1")]) is None
    assert hosts.refusal("x", [ipaddress.ip_address("127.0.0.2")]) is not None
    everywhere = UploadHosts("*")
    assert everywhere.refusal("x", [ipaddress.ip_address("169.254.169.254")]) is None
