import pytest

from lab.images.raw import DEFAULT_SCHEMATIC
from lab.images.schematics import SchematicError, canonical_schematic, schematic_id


@pytest.mark.parametrize("body", [b"", b"customization: {}", b"{}", b'{"customization": {}}'])
def test_empty_schematic_has_the_well_known_vanilla_id(body: bytes) -> None:
    assert schematic_id(canonical_schematic(body)) == DEFAULT_SCHEMATIC


def test_canonical_form_is_independent_of_input_style() -> None:
    yaml_body = b"customization:\n  extraKernelArgs: [vga=791]\n"
    json_body = b'{"customization": {"extraKernelArgs": ["vga=791"]}}'
    assert canonical_schematic(yaml_body) == canonical_schematic(json_body)
    assert canonical_schematic(yaml_body) == "customization:\n    extraKernelArgs:\n        - vga=791\n"


def test_unknown_field_is_rejected_by_path() -> None:
    with pytest.raises(SchematicError, match=r"unknown field 'customization\.extensions'"):
        canonical_schematic(b"customization:\n  extensions: []\n")


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(SchematicError, match=r"'customization\.extraKernelArgs' must be of type list"):
        canonical_schematic(b"customization:\n  extraKernelArgs: quiet\n")
