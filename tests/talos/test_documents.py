import pytest

from talos.documents import document_id, document_key, dump_documents, parse_documents
from talos.errors import ConfigError

CONFIG = """\
version: v1alpha1
machine:
  certSANs: [a, b]
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: stable
"""


def test_parse_then_dump_round_trips_documents_in_order() -> None:
    docs = parse_documents(CONFIG)
    assert parse_documents(dump_documents(docs)) == docs
    assert [document_id(d) for d in docs] == ["v1alpha1", "LinkConfig/eth0", "HostnameConfig"]


def test_dump_indents_four_spaces_with_lists_under_their_key() -> None:
    text = dump_documents(parse_documents(CONFIG)[:1])
    assert text == "version: v1alpha1\nmachine:\n    certSANs:\n        - a\n        - b\n"


def test_dump_writes_multiline_strings_as_block_literals() -> None:
    text = dump_documents([{"cluster": {"inlineManifests": [{"contents": "a: 1\nb: 2\n"}]}}])
    assert "contents: |\n" in text
    assert parse_documents(text)[0]["cluster"]["inlineManifests"][0]["contents"] == "a: 1\nb: 2\n"


def test_document_key_matches_talos_identity() -> None:
    v1alpha1, link, hostname = parse_documents(CONFIG)
    assert document_key(v1alpha1) == ("", "v1alpha1", "")
    assert document_key(link) == ("v1alpha1", "LinkConfig", "eth0")
    assert document_key(hostname) == ("v1alpha1", "HostnameConfig", "")


def test_parse_skips_empty_documents() -> None:
    assert parse_documents("---\nversion: v1alpha1\n---\n") == [{"version": "v1alpha1"}]


def test_parse_rejects_a_non_mapping_document_by_position() -> None:
    with pytest.raises(ConfigError, match=r"patch\.yaml: document 2: is a list, not a mapping"):
        parse_documents("a: 1\n---\n- b\n", source="patch.yaml")


def test_parse_reports_yaml_syntax_errors_with_source_and_position_but_no_text() -> None:
    text = "machine:\n  token: SECRET.0123456789abcdef\n  ca: {crt: a, key: SECRET-key\n"

    with pytest.raises(ConfigError, match=r"cp-1: \$: not valid YAML at line 4, column 1: ") as caught:
        parse_documents(text, source="cp-1")

    assert "SECRET" not in str(caught.value) and "(fix: fix the YAML syntax)" in str(caught.value)


def test_dump_quotes_ambiguous_strings_with_double_quotes_like_go_yaml() -> None:
    text = dump_documents([{"context": "", "token": "123456", "flag": "true", "auto": "off"}])
    assert text == 'context: ""\ntoken: "123456"\nflag: "true"\nauto: "off"\n'


def test_dump_writes_mappings_in_lists_like_go_yaml() -> None:
    text = dump_documents([{"admissionControl": [{"name": "PodSecurity", "configuration": {"kind": "X"}}]}])
    assert text == "admissionControl:\n    - name: PodSecurity\n      configuration:\n          kind: X\n"


def test_parse_reads_scalars_as_go_yaml_does_not_yaml_1_1() -> None:
    (doc,) = parse_documents("auto: off\nmac: 52:54:00:12:34:56\nday: 2024-01-01\non: true\nmode: 0755\n")
    assert doc == {"auto": "off", "mac": "52:54:00:12:34:56", "day": "2024-01-01", "on": True, "mode": 0o755}


def test_parse_refuses_duplicate_keys() -> None:
    with pytest.raises(ConfigError, match='mapping key "a" already defined at line 1'):
        parse_documents("a: 1\na: 2\n")
