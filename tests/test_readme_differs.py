"""README's "Where virtctl differs from virsh on purpose": every item has a test.

The wide comparison (tests/cli/test_virsh_wide.py) checks the other direction:
each command string that differs from virsh names an item of that section.
Here each item of the section (a top-level "- " bullet) is tied, by the words
it starts with, to the tests that show the difference; a new item without an
entry here, an entry for an item that is gone, or a test that does not exist
fails.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Where virtctl differs from virsh on purpose"

# opening words of the item -> the tests that show it ("path::test_name")
ITEMS: dict[str, list[str]] = {
    "Unknown XML elements and attributes are errors": [
        "tests/test_validate_errors.py::test_unknown_element_deep_in_devices",
        "tests/test_validate_errors.py::test_unknown_attribute",
        "tests/cli/test_xml_commands.py::test_validate_refuses_names_the_schema_allows",
        "tests/test_domain_checks.py::test_names_with_bidi_or_separators_are_refused",
    ],
    "Hostile sizes are refused": [
        "tests/test_xml_sizes.py::test_elements_per_document",
        "tests/test_xml_sizes.py::test_children_of_wide_elements_share_one_budget",
        "tests/test_xml_sizes.py::test_depth",
        "tests/test_xml_sizes.py::test_define_past_the_device_limit_is_refused",
        "tests/test_xml_sizes.py::test_limits_are_far_above_libvirts_corpus",
        "tests/test_xml_hostile.py::test_ten_mib_plus_one_byte",
    ],
    "A pipe, FIFO or terminal given as a file": [
        "tests/test_xml_hostile.py::test_fifo_without_writer_is_waited_on_like_virsh",
        "tests/test_xml_hostile.py::test_fifo_wait_is_interrupted_by_ctrl_c",
        "tests/test_xml_hostile.py::test_pipe_past_the_limit_is_refused_without_reading_it_all",
    ],
    "Otherwise the schemas accept what libvirt 9.0's accept": [
        "tests/test_validate_differential.py::test_random_documents_agree",
        "tests/test_schema_libvirt_gaps.py::test_deliberate_differences",
        "tests/test_xml_hostile.py::test_unknown_namespace_element_rejected",
    ],
    "Exit statuses say what went wrong": [
        "tests/cli/test_cli.py::test_readme_exit_code_table_matches_code",
        "tests/cli/test_cli.py::test_errors_have_codes_and_statuses",
        "tests/cli/test_cli.py::test_json_shapes",
    ],
    "The test driver refuses what libvirt's test driver refuses": [
        "tests/cli/test_virsh_semantics.py::test_differs_start_and_create_paused",
        "tests/cli/test_virsh_semantics.py::test_differs_shutdown_wait",
        "tests/cli/test_virsh_semantics.py::test_differs_transient_domains_are_not_undefined_or_autostarted",
        "tests/cli/test_virsh_semantics.py::test_differs_start_after_managed_save_is_restored",
        "tests/cli/test_virsh_semantics.py::test_differs_wrong_state_errors_say_operation_invalid",
        "tests/cli/test_virsh_wide.py::test_same_as_virsh",
    ],
    "`dumpxml --xpath` prints a string, number or boolean result": [
        "tests/cli/test_virsh_semantics.py::test_differs_dumpxml_xpath_scalars",
        "tests/cli/test_virsh_semantics.py::test_dumpxml_xpath_prints_scalar_results",
        "tests/cli/test_virsh_semantics.py::test_dumpxml_xpath_invalid_expression_is_virsh_s",
    ],
    "`version` names virtctl, not libvirt": [
        "tests/cli/test_cli.py::test_version_and_help",
    ],
    "Where virsh's message names libvirt as the one who manages something": [
        "tests/cli/test_virsh_storage.py::test_undefine_storage",
    ],
    "`validate FILE [KIND]` is virtctl's": [
        "tests/cli/test_xml_commands.py::test_validate_good_and_bad",
        "tests/cli/test_xml_commands.py::test_validate_kind_and_errors",
    ],
    "Command help (`help COMMAND`, `COMMAND --help`) has virtctl's own layout": [
        "tests/shell/test_help_and_stdin.py::test_help_is_whole_when_not_a_terminal",
        "tests/shell/test_help_and_stdin.py::test_help_is_cut_to_the_terminal_width_on_a_terminal",
    ],
    "A command string of only `echo`, `help`, `validate`, `connect`, `quit`": [
        "tests/cli/test_parser_rules.py::test_echo_alone_needs_no_hypervisor",
    ],
    "A typo gets a `hint: did you mean 'list'?` line": [
        "tests/cli/test_parser_rules.py::test_typo_keeps_virsh_first_line_and_suggests",
        "tests/cli/test_parser_rules.py::test_virsh_command_not_implemented_yet",
    ],
    "`-q` does not eat `echo`'s newline": [
        "tests/cli/test_parser_rules.py::test_quiet_keeps_echo_newline",
    ],
    "`-k`/`-K` are accepted without effect": [
        "tests/cli/test_parser_rules.py::test_global_options",
        "tests/cli/test_parser_rules.py::test_refused_global_options_say_so",
    ],
    "The interactive shell continues a line that ends inside quotes": [
        "tests/shell/test_repl.py::test_continuation_lines_and_command_strings",
        "tests/cli/test_split.py::test_unclosed_single_quote_ends_the_argument_as_in_virsh",
    ],
    "A command's argument values and option combinations are all checked": [
        "tests/cli/test_parser_rules.py::test_values_are_checked_before_the_domain_is_looked_up",
    ],
    "`uri_default` is also read from `$XDG_CONFIG_HOME/libvirt/libvirt.conf`": [
        "tests/cli/test_parser_rules.py::test_uri_order",
        "tests/cli/test_parser_rules.py::test_virsh_environment_through_the_installed_entry_point",
    ],
    "Through the libvirt driver, hotplug with `--live` alone": [
        "tests/cli/test_virsh_hotplug_libvirt.py::test_hotplug_cases_through_libvirt_as_virsh",
        "tests/cli/test_virsh_hotplug_libvirt.py::test_differs_are_in_the_readme",
    ],
    "Through the libvirt driver (`libvirt:URI`": [
        "tests/cli/test_virsh_wide_libvirt.py::test_every_wide_case_through_libvirt_as_virsh",
        "tests/cli/test_virsh_wide_libvirt.py::test_differs_are_in_the_readme",
    ],
    "`net-destroy --force` (qemu)": [
        "tests/integration/test_qemu_network.py::test_nat_network_lease_http_dnsmasq_death_and_full_cleanup",
    ],
    "`<portForward>` without `address` listens on 127.0.0.1 only": [
        "tests/qemu_argv/test_argv_net_user.py::test_hostfwd_default_address_ranges_to_and_exclude",
        "tests/qemu_argv/test_argv_net_user.py::test_bad_forwards",
    ],
    "QEMU snapshots: names may not start with `.`": [
        "tests/integration/test_qemu_snapshot.py::test_bad_input_changes_nothing",
        "tests/integration/test_qemu_snapshot.py::test_offline_internal_snapshot_tree_revert_delete_and_reparent",
        "tests/integration/test_qemu_snapshot_external.py::test_revert_of_the_running_guest_needs_force_to_respawn_it",
    ],
    "`vol-wipe` of a qcow2 volume leaves an empty qcow2 image": [
        "tests/integration/test_qemu_storage_safety.py::test_wipe_qcow2_leaves_an_empty_qcow2_of_the_same_size_and_backing",
    ],
    "Block jobs: `blockresize` refuses a size below": [
        "tests/integration/test_qemu_blockjob.py::test_blockpull_blockcopy_pivot_blockresize_vol_resize_and_bad_input",
        "tests/cli/test_blockjob_commands.py::test_api_checks_and_test_driver_answers",
        "tests/integration/test_libvirtd_snapshot.py::test_block_info_and_resize",
    ],
    "Hotplug on the test driver: libvirt's test driver refuses": [
        "tests/cli/test_hotplug_commands.py::test_attach_disk_flags_on_a_running_domain",
        "tests/cli/test_hotplug_commands.py::test_change_media_and_update_device",
    ],
    "`attach-interface` takes type `user`": [
        "tests/cli/test_hotplug_commands.py::test_attach_interface_and_detach_by_mac",
        "tests/integration/test_qemu_hotplug.py::test_attach_interface_user_seen_by_guest",
    ],
    "A detach that the guest does not answer fails with `OPERATION_TIMEOUT`": [
        "tests/integration/test_qemu_hotplug.py::test_detach_the_guest_ignores_times_out_cleanly",
    ],
    "q35 definitions without PCI controllers get four `pcie-root-port`s": [
        "tests/test_spare_ports_and_desc_edit.py::test_q35_definition_without_pci_controllers_gets_spare_root_ports",
    ],
    "`domstats` without domain names lists the domains in the driver's order": [
        "tests/cli/test_virsh_stats.py::test_wide_node",
    ],
    "`event --json` prints JSON Lines": [
        "tests/cli/test_virsh_meta_event.py::test_event_json_timeout",
        "tests/integration/test_qemu_events.py::test_event_loop_sees_everything_in_order",
        "tests/cli/test_top_events.py::test_unknown_network_or_pool_is_an_error_at_once",
    ],
    "`dompmsuspend` on the QEMU driver is NOT_SUPPORTED": [
        "tests/integration/test_qemu_events.py::test_desc_metadata_inject_nmi_on_running_guest",
    ],
    "`ttyconsole` on a running QEMU domain says that its console is a unix": [
        "tests/integration/test_qemu_events.py::test_desc_metadata_inject_nmi_on_running_guest",
    ],
    "`desc --edit` and `metadata --edit` open `$VISUAL`/`$EDITOR`": [
        "tests/test_spare_ports_and_desc_edit.py::test_desc_edit_runs_the_editor_on_the_description",
    ],
    "A disk's `<backingStore>` chain in a definition must be the one its images record": [
        "tests/qemu_argv/test_argv_confined.py::test_chain_given_must_be_the_images",
    ],
}


def _items() -> list[str]:
    """The section's top-level bullets, each joined into one line."""
    text = (ROOT / "README.md").read_text()
    body = text[text.index(SECTION) + len(SECTION):]
    body = body[:body.find("\n## ")] if "\n## " in body else body
    items: list[str] = []
    for line in body.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items and line.strip():
            items[-1] += " " + line.strip()
        elif not line.strip() and items:
            items.append("")  # a blank line ends a bullet
    return [i for i in items if i]


def _test_exists(ref: str) -> bool:
    path, name = ref.split("::")
    f = ROOT / path
    return f.is_file() and re.search(rf"^\s*def {re.escape(name)}\(", f.read_text(), re.M) is not None


def test_every_item_has_tests_and_every_entry_an_item():
    items = _items()
    assert len(items) >= 15  # the section is found and parsed
    unmatched = [i[:70] for i in items if not any(i.startswith(k) for k in ITEMS)]
    assert not unmatched, f"README items without tests here: {unmatched}"
    stale = [k for k in ITEMS if not any(i.startswith(k) for i in items)]
    assert not stale, f"entries for items no longer in README: {stale}"


def test_every_named_test_exists():
    missing = [ref for refs in ITEMS.values() for ref in refs if not _test_exists(ref)]
    assert not missing, f"tests named here that do not exist: {missing}"
    assert all(refs for refs in ITEMS.values())
