"""build_argv: unit tests, one feature at a time (no QEMU needed)."""
from __future__ import annotations

import json

import pytest

from qemu_argv.helpers import DATA, parse, paths
from virtctl.drivers.qemu.argv import build_argv, channel_socket, emulator_path, serial_log, serial_socket
from virtctl.errors import NotSupported, XMLError

P = paths()


def dom(devices: str = "", *, extra: str = "", os_extra: str = "<boot dev='hd'/>", machine: str = "q35",
        dtype: str = "qemu", name: str = "t1", validate: bool = True):
    return parse(f"""<domain type='{dtype}'>
  <name>{name}</name>
  <uuid>0b7e6b0a-1c58-4f0b-9f0e-2d2f6a1b3c4d</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type>{os_extra}</os>
  {extra}
  <devices>{devices}</devices>
</domain>""", validate=validate)


def argv_of(*a, **kw) -> list[str]:
    return build_argv(dom(*a, **kw), P)


def opts(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def devices(argv: list[str]) -> list[dict]:
    return [json.loads(a) for a in opts(argv, "-device")]


def device(argv: list[str], driver: str) -> dict:
    found = [d for d in devices(argv) if d["driver"] == driver]
    assert len(found) == 1, (driver, devices(argv))
    return found[0]


def blockdevs(argv: list[str]) -> list[dict]:
    return [json.loads(a) for a in opts(argv, "-blockdev")]


def refused(xml_dom, needle: str) -> NotSupported:
    with pytest.raises(NotSupported) as ei:
        build_argv(xml_dom, P)
    assert needle in str(ei.value), str(ei.value)
    assert ei.value.code == "NOT_SUPPORTED"
    return ei.value


# --- the fixed part -------------------------------------------------------------------------
def test_minimal_domain_fixed_options():
    a = argv_of()
    assert a[0] == "qemu-system-x86_64"
    for flag in ("-S", "-no-user-config", "-nodefaults", "-no-shutdown"):
        assert flag in a
    assert "-no-reboot" not in a
    assert opts(a, "-name") == ["guest=t1,debug-threads=on"]
    assert opts(a, "-msg") == ["timestamp=on"]
    assert opts(a, "-accel") == ["tcg"]
    assert opts(a, "-m") == ["size=131072k"]
    assert opts(a, "-smp") == ["1,maxcpus=1,sockets=1,cores=1,threads=1"]
    assert opts(a, "-uuid") == ["0b7e6b0a-1c58-4f0b-9f0e-2d2f6a1b3c4d"]
    assert opts(a, "-pidfile") == [P.pidfile]
    assert opts(a, "-display") == ["none"]
    assert opts(a, "-boot") == ["order=c,strict=on"]
    assert opts(a, "-machine") == ["q35,usb=off,dump-guest-core=off,acpi=off"]
    assert opts(a, "-chardev") == [
        f"socket,id=charmonitor,path={P.qmp},server=on,wait=off",
        f"socket,id=charmonitor2,path={P.qmp_monitor},server=on,wait=off"]
    assert opts(a, "-mon") == ["chardev=charmonitor,id=monitor,mode=control",
                               "chardev=charmonitor2,id=monitor2,mode=control"]
    assert opts(a, "-sandbox")[0].startswith("on,")
    assert "-cpu" not in a and "-vnc" not in a and "-device" not in a


def test_pure_and_repeatable():
    d = dom("<disk type='file' device='disk'><source file='/nonexistent/x.img'/><target dev='vda' bus='virtio'/></disk>")
    before = d.to_xml()
    assert build_argv(d, P) == build_argv(d, P)
    assert d.to_xml() == before


def test_emulator():
    assert emulator_path(dom()) == "qemu-system-x86_64"
    assert emulator_path(dom("<emulator>/opt/q/bin/qemu</emulator>")) == "/opt/q/bin/qemu"
    assert build_argv(dom("<emulator>/opt/q/bin/qemu</emulator>"), P)[0] == "/opt/q/bin/qemu"
    assert build_argv(dom(), P, emulator="/x/qemu")[0] == "/x/qemu"
    i686 = parse(dom().to_xml().replace("arch='x86_64'", "arch='i686'"))
    assert emulator_path(i686) == "qemu-system-i386"


def test_on_reboot_destroy_is_no_reboot():
    a = argv_of(extra="<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>restart</on_crash>")
    assert "-no-reboot" in a
    assert "-no-reboot" not in argv_of(extra="<on_reboot>restart</on_reboot>")


# --- machine, accel, cpu, memory, smp -----------------------------------------------------
@pytest.mark.parametrize("machine", ["pc", "q35", "pc-i440fx-7.2", "pc-q35-7.2", "pc-q35-6.2", "pc-i440fx-2.12"])
def test_machines(machine):
    assert opts(argv_of(machine=machine), "-machine")[0].startswith(machine + ",")


def test_unsupported_machine():
    refused(dom(machine="microvm"), "<type machine='microvm'>")


def test_kvm_and_cpu_modes():
    assert opts(argv_of(dtype="kvm"), "-accel") == ["kvm"]
    e = refused(dom(extra="<cpu mode='host-passthrough'/>"), "host-passthrough")
    assert "KVM" in str(e)
    assert opts(argv_of(dtype="kvm", extra="<cpu mode='host-passthrough'/>"), "-cpu") == ["host"]
    assert opts(argv_of(extra="<cpu mode='host-model'/>"), "-cpu") == ["max"]
    assert opts(argv_of(dtype="kvm", extra="<cpu mode='host-model'/>"), "-cpu") == ["host"]
    a = argv_of(extra="""<cpu mode='custom' match='exact'><model fallback='allow'>Skylake-Client</model>
        <feature policy='require' name='avx2'/><feature policy='disable' name='svm'/></cpu>""")
    assert opts(a, "-cpu") == ["Skylake-Client,avx2=on,svm=off"]


def test_memory_units_and_current_memory():
    d = parse(dom().to_xml().replace("<memory unit='MiB'>128</memory>",
                                     "<memory unit='GiB'>1</memory><currentMemory unit='MiB'>512</currentMemory>"))
    assert opts(build_argv(d, P), "-m") == ["size=1048576k"]


def test_vcpus_and_topology():
    d = parse(dom(extra="<cpu><topology sockets='1' dies='1' cores='2' threads='2'/></cpu>").to_xml()
              .replace("<vcpu>1</vcpu>", "<vcpu current='2'>4</vcpu>"))
    assert opts(build_argv(d, P), "-smp") == ["2,maxcpus=4,sockets=1,cores=2,threads=2"]
    d = parse(dom().to_xml().replace("<vcpu>1</vcpu>", "<vcpu placement='static'>3</vcpu>"))
    assert opts(build_argv(d, P), "-smp") == ["3,maxcpus=3,sockets=3,cores=1,threads=1"]


# --- os: kernel, boot order ----------------------------------------------------------------
def test_direct_kernel_boot_plain_arguments():
    a = argv_of(os_extra="<kernel>/k/vm,linuz</kernel><initrd>/k/init rd</initrd>"
                         "<cmdline>console=ttyS0,115200 root=/dev/vda quiet</cmdline>")
    assert opts(a, "-kernel") == ["/k/vm,linuz"]  # plain arguments: no escaping
    assert opts(a, "-initrd") == ["/k/init rd"]
    assert opts(a, "-append") == ["console=ttyS0,115200 root=/dev/vda quiet"]
    assert opts(a, "-boot") == ["strict=on"]


def test_boot_order_and_bootmenu():
    a = argv_of(os_extra="<boot dev='cdrom'/><boot dev='hd'/><boot dev='network'/>"
                         "<bootmenu enable='yes' timeout='3000'/>")
    assert opts(a, "-boot") == ["order=dcn,menu=on,splash-time=3000,strict=on"]


def test_per_device_boot_order():
    a = argv_of("""<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/>
        <boot order='2'/></disk>
        <interface type='user'><model type='virtio'/><boot order='1'/></interface>""", os_extra="")
    assert device(a, "virtio-blk-pci")["bootindex"] == 2
    assert device(a, "virtio-net-pci")["bootindex"] == 1
    with pytest.raises(XMLError):
        argv_of("""<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/>
            <boot order='1'/></disk>""", validate=False)


# --- disks ------------------------------------------------------------------------------------
def test_qcow2_virtio_disk_with_driver_options():
    a = argv_of("""<disk type='file' device='disk'>
        <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap' detect_zeroes='unmap'/>
        <source file='/var/lib/x.qcow2'/><target dev='vda' bus='virtio'/><serial>abc 1</serial></disk>""")
    proto, fmt = blockdevs(a)
    assert proto == {"driver": "file", "filename": "/var/lib/x.qcow2", "node-name": "libvirt-1-storage",
                     "read-only": False, "cache": {"direct": True, "no-flush": False}, "discard": "unmap",
                     "aio": "native"}
    assert fmt == {"node-name": "libvirt-1-format", "read-only": False, "driver": "qcow2",
                   "file": "libvirt-1-storage", "cache": {"direct": True, "no-flush": False},
                   "discard": "unmap", "detect-zeroes": "unmap"}
    dev = device(a, "virtio-blk-pci")
    assert dev == {"driver": "virtio-blk-pci", "id": "virtio-disk0", "drive": "libvirt-1-format",
                   "write-cache": "on", "serial": "abc 1"}


def test_no_driver_type_means_raw_never_probed():
    a = argv_of("<disk type='file' device='disk'><source file='/a.img'/><target dev='vdb'/></disk>")
    assert [b.get("driver") for b in blockdevs(a)] == ["file", "raw"]
    assert device(a, "virtio-blk-pci")["id"] == "virtio-disk1"


def test_readonly_disk_and_block_device():
    a = argv_of("""<disk type='block' device='disk'><driver name='qemu' type='raw'/>
        <source dev='/dev/sdz'/><target dev='vda' bus='virtio'/><readonly/></disk>""")
    proto, fmt = blockdevs(a)
    assert proto["driver"] == "host_device" and proto["filename"] == "/dev/sdz"
    assert proto["read-only"] is True and fmt["read-only"] is True


def test_cdroms_sata_q35_ide_pc_scsi():
    a = argv_of("""<disk type='file' device='cdrom'><source file='/i.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
        <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/><readonly/></disk>""")
    cds = [d for d in devices(a) if d["driver"] == "ide-cd"]
    assert cds[0]["bus"] == "ide.0" and cds[0]["drive"] == "libvirt-1-format"
    assert cds[1]["bus"] == "ide.1" and "drive" not in cds[1]  # empty cdrom
    assert all(b["read-only"] for b in blockdevs(a))
    assert not [d for d in devices(a) if d["driver"] == "ich9-ahci"]  # q35's built-in AHCI
    a = argv_of("""<disk type='file' device='disk'><source file='/h.img'/><target dev='hda' bus='ide'/></disk>
        <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
        <disk type='file' device='disk'><source file='/s.img'/><target dev='sda' bus='sata'/></disk>""", machine="pc")
    hds = [d for d in devices(a) if d["driver"] == "ide-hd"]
    assert hds[0]["bus"] == "ide.0" and hds[0]["unit"] == 0
    assert hds[1]["bus"] == "sata0.0"
    assert device(a, "ide-cd")["bus"] == "ide.1" and device(a, "ide-cd")["unit"] == 0
    assert device(a, "ich9-ahci")["id"] == "sata0"
    a = argv_of("""<disk type='file' device='cdrom'><target dev='sda' bus='scsi'/><readonly/></disk>
        <disk type='file' device='disk'><source file='/s.img'/><target dev='sdb' bus='scsi'/></disk>""")
    assert device(a, "virtio-scsi-pci")["id"] == "scsi0"  # added as libvirt does
    assert device(a, "scsi-cd")["bus"] == "scsi0.0" and device(a, "scsi-hd")["lun"] == 1


def test_backing_store():
    a = argv_of("""<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/top.qcow2'/>
        <backingStore/><target dev='vda' bus='virtio'/></disk>""")
    assert blockdevs(a)[1]["backing"] is None
    a = argv_of("""<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/top.qcow2'/>
        <backingStore type='file'><format type='raw'/><source file='/base.img'/></backingStore>
        <target dev='vda' bus='virtio'/></disk>""")
    nodes = {b["node-name"]: b for b in blockdevs(a)}
    top = nodes[device(a, "virtio-blk-pci")["drive"]]
    base = nodes[top["backing"]]
    assert base["driver"] == "raw" and base["read-only"] is True
    assert nodes[base["file"]]["filename"] == "/base.img"


def test_refused_disks():
    refused(dom("<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
                "<source protocol='nbd' name='x'><host name='h' port='1'/></source><target dev='vda'/></disk>"),
            "<disk type='network'>")
    refused(dom("<disk type='file' device='floppy'><source file='/f'/><target dev='fda'/></disk>"),
            "<disk device='floppy'>")
    refused(dom("<disk type='file' device='disk'><source file='/f'/><target dev='hda' bus='ide'/></disk>"),
            "q35")
    refused(dom("<disk type='file' device='disk'><source file='/f'/><target dev='vda'/><shareable/></disk>"),
            "<shareable>")


# --- hostile values -------------------------------------------------------------------------
HOSTILE = ["/img/a.img,readonly=off", "/img/with space/d i s k.img", "/img/quo'te\"d.img",
           "/img/new\nline.img", "/img/ünï©ødé-磁盘.qcow2", "/img/a,,b=c,file.driver=nbd"]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_disk_paths_reach_qemu_intact(path):
    from virtctl.xml import xmlapi

    d = dom("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='/PLACEHOLDER'/><target dev='vda' bus='virtio'/></disk>")
    d.root.find("devices/disk/source").set("file", path)
    if "\n" not in path:  # (an XML attribute cannot hold a raw newline: see the report on xmlapi)
        d = parse(xmlapi.tostring(d.root))  # as the definition would be read back
    a = build_argv(d, P)
    proto = blockdevs(a)[0]
    assert proto["filename"] == path
    assert json.loads(opts(a, "-blockdev")[0])["filename"].encode("utf-8") == path.encode("utf-8")
    assert set(proto) == {"driver", "filename", "node-name", "read-only"}  # nothing injected


def test_name_is_escaped():
    a = argv_of(name="web,process=pwned,debug-threads=off")
    assert opts(a, "-name") == ["guest=web,,process=pwned,,debug-threads=off,debug-threads=on"]
    a = argv_of(name="ünï cødé \"q\" 'x'")
    assert opts(a, "-name") == ["guest=ünï cødé \"q\" 'x',debug-threads=on"]


def test_runtime_paths_with_commas_are_escaped():
    p = paths("/run/a,b")
    a = build_argv(dom("<serial type='pty'/>"), p)
    assert "path=/run/a,,b/qmp.sock," in opts(a, "-chardev")[0]
    assert opts(a, "-pidfile") == ["/run/a,b/qemu.pid"]  # plain argument
    assert "logfile=/run/a,,b/chardev/serial0.log" in opts(a, "-chardev")[2]


def test_chardev_paths_are_escaped():
    a = argv_of("<serial type='file'><source path='/var/log/a,mux=on.log'/></serial>"
                "<serial type='unix'><source mode='bind' path='/s/x,server=off'/><target port='1'/></serial>")
    ch = opts(a, "-chardev")
    assert "file,id=charserial0,path=/var/log/a,,mux=on.log" in ch
    assert "socket,id=charserial1,path=/s/x,,server=off,server=on,wait=off" in ch


# --- network ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,driver", [("virtio", "virtio-net-pci"), ("e1000", "e1000"),
                                          ("rtl8139", "rtl8139"), ("e1000e", "e1000e")])
def test_user_network(model, driver):
    a = argv_of(f"<interface type='user'><mac address='52:54:00:12:34:56'/><model type='{model}'/></interface>")
    assert [json.loads(n) for n in opts(a, "-netdev")] == [{"type": "user", "id": "hostnet0"}]
    assert device(a, driver) == {"driver": driver, "netdev": "hostnet0", "id": "net0", "mac": "52:54:00:12:34:56"}


@pytest.mark.parametrize("itype,src", [("bridge", "<source bridge='br0'/>"),
                                       ("network", "<source network='lab' bridge='br0'/>")])
def test_bridge_and_network_are_taps(itype, src, monkeypatch, tmp_path):
    """A resolved interface (network/resolve.py filled the bridge and tap): as
    root a tap QEMU opens by name; without root qemu-bridge-helper, only where
    bridge.conf allows the bridge."""
    from virtctl.drivers.qemu.network import taps
    from virtctl.errors import OperationFailed

    xml = dom(f"<interface type='{itype}'><mac address='52:54:00:12:34:56'/>{src}<target dev='vnet3'/>"
              "<model type='virtio'/></interface>")
    monkeypatch.setattr(taps, "privileged", lambda: True)
    a = build_argv(xml, P)
    assert [json.loads(n) for n in opts(a, "-netdev")] == [
        {"type": "tap", "id": "hostnet0", "ifname": "vnet3", "script": "no", "downscript": "no", "vhost": False}]
    assert device(a, "virtio-net-pci")["netdev"] == "hostnet0"
    monkeypatch.setattr(taps, "privileged", lambda: False)
    helper = tmp_path / "qemu-bridge-helper"
    helper.write_text("")
    monkeypatch.setattr(taps, "HELPERS", (str(helper),))
    monkeypatch.setattr(taps, "BRIDGE_CONF", str(tmp_path / "bridge.conf"))
    with pytest.raises(OperationFailed) as ei:
        build_argv(xml, P)
    assert f"add the line 'allow br0' to {tmp_path}/bridge.conf" in str(ei.value)
    (tmp_path / "bridge.conf").write_text("allow br0\n")
    a = build_argv(xml, P)
    assert [json.loads(n) for n in opts(a, "-netdev")] == [
        {"type": "bridge", "id": "hostnet0", "br": "br0", "helper": str(helper)}]


def test_other_interface_types_refused():
    refused(dom("<interface type='direct'><source dev='eth0' mode='bridge'/></interface>"),
            "<interface type='direct'>")


# --- serial, console, channel ------------------------------------------------------------------
def test_pty_console_is_serial0_on_a_socket():
    for devs in ("<console type='pty'/>",
                 "<serial type='pty'><target type='isa-serial' port='0'><model name='isa-serial'/></target></serial>"
                 "<console type='pty'><target type='serial' port='0'/></console>",
                 "<serial type='pty'/>"):
        a = argv_of(devs)
        ch = opts(a, "-chardev")
        assert ch[2:] == [f"socket,id=charserial0,path={serial_socket(P, 0)},server=on,wait=off,"
                          f"logfile={serial_log(P, 0)}"], devs
        assert [d for d in devices(a)] == [{"driver": "isa-serial", "chardev": "charserial0",
                                            "id": "serial0", "index": 0}]
    assert serial_socket(P, 0) == "/run/vt/u/chardev/serial0.sock"


def test_guest_agent_channel():
    a = argv_of("<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>")
    assert device(a, "virtio-serial-pci")["id"] == "virtio-serial0"
    assert device(a, "virtserialport") == {"driver": "virtserialport", "chardev": "charchannel0", "id": "channel0",
                                           "name": "org.qemu.guest_agent.0", "bus": "virtio-serial0.0"}
    assert f"socket,id=charchannel0,path={channel_socket(P, 0)},server=on,wait=off" in opts(a, "-chardev")
    refused(dom("<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>"),
            "<channel type='spicevmc'>")


# --- graphics, video, input -------------------------------------------------------------------
@pytest.mark.parametrize("xml,expect", [
    ("<graphics type='vnc'/>", "unix:/run/vt/u/vnc.sock"),
    ("<graphics type='vnc'><listen type='socket'/></graphics>", "unix:/run/vt/u/vnc.sock"),
    ("<graphics type='vnc'><listen type='socket' socket='/tmp/v,x.sock'/></graphics>", "unix:/tmp/v,,x.sock"),
    ("<graphics type='vnc' port='-1'/>", "127.0.0.1:0,to=99"),
    ("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'><listen type='address' address='127.0.0.1'/></graphics>",
     "127.0.0.1:0,to=99"),
    ("<graphics type='vnc' port='5905' autoport='no'><listen type='address' address='::1'/></graphics>", "[::1]:5"),
])
def test_vnc(xml, expect):
    assert opts(argv_of(xml), "-vnc") == [expect]


def test_vnc_password_and_spice_refused():
    refused(dom("<graphics type='vnc' passwd='secret'/>"), "passwd")
    refused(dom("<graphics type='spice'/>"), "<graphics type='spice'>")


@pytest.mark.parametrize("model,driver", [("virtio", "virtio-vga"), ("qxl", "qxl-vga"), ("vga", "VGA"),
                                          ("cirrus", "cirrus-vga"), ("bochs", "bochs-display")])
def test_video(model, driver):
    assert device(argv_of(f"<video><model type='{model}'/></video>"), driver)["id"] == "video0"


def test_video_none_and_secondary():
    assert "-device" not in argv_of("<video><model type='none'/></video>")
    a = argv_of("<video><model type='vga' primary='yes'/></video><video><model type='virtio'/></video>")
    assert [d["driver"] for d in devices(a)] == ["VGA", "virtio-gpu-pci"]


def test_inputs():
    a = argv_of("<input type='tablet' bus='usb'/><input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>"
                "<input type='keyboard' bus='virtio'/>")
    assert device(a, "qemu-xhci")["id"] == "usb"  # implicit controller for the USB tablet
    assert device(a, "usb-tablet")["bus"] == "usb.0"
    assert device(a, "virtio-keyboard-pci")
    assert len(devices(a)) == 3  # ps2 devices are the machine's own
    assert device(argv_of("<input type='mouse' bus='usb'/>", machine="pc"), "piix3-usb-uhci")["id"] == "usb"
    with pytest.raises(XMLError):
        argv_of("<controller type='usb' model='none'/><input type='tablet' bus='usb'/>")


# --- controllers, addresses -------------------------------------------------------------------
def test_usb_controllers():
    a = argv_of("<controller type='usb' model='qemu-xhci' ports='15'/>")
    assert device(a, "qemu-xhci") == {"driver": "qemu-xhci", "id": "usb", "p2": 15, "p3": 15}
    a = argv_of("""<controller type='usb' model='ich9-ehci1'/>
        <controller type='usb' model='ich9-uhci1'><master startport='0'/></controller>
        <controller type='usb' model='ich9-uhci2'><master startport='2'/></controller>""", machine="pc")
    names = [d["driver"] for d in devices(a)]
    assert names == ["ich9-usb-ehci1", "ich9-usb-uhci1", "ich9-usb-uhci2"]
    assert devices(a)[2]["masterbus"] == "usb.0" and devices(a)[2]["firstport"] == 2
    assert "-device" not in argv_of("<controller type='usb' model='none'/>")


def test_root_ports_and_pci_addresses():
    a = argv_of("""<controller type='pci' model='pcie-root'/>
        <controller type='pci' model='pcie-root-port'/>
        <controller type='pci' index='2' model='pcie-root-port'><model name='pcie-root-port'/>
          <target chassis='7' port='0x11'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x1' multifunction='on'/></controller>
        <interface type='user'><model type='virtio'/>
          <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></interface>
        <memballoon model='virtio'/>""")
    ds = devices(a)
    assert ds[0] == {"driver": "pcie-root-port", "id": "pci.2", "chassis": 7, "port": 0x11,
                     "bus": "pcie.0", "addr": "0x2.0x1", "multifunction": True}
    assert ds[1] == {"driver": "pcie-root-port", "id": "pci.1", "chassis": 1, "port": 0x10}
    assert ds[2]["driver"] == "virtio-net-pci" and ds[2]["bus"] == "pci.2" and ds[2]["addr"] == "0x0.0x0"
    assert ds[3]["driver"] == "virtio-balloon-pci" and "bus" not in ds[3]  # QEMU places it
    with pytest.raises(XMLError):
        argv_of("<memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x05' slot='0x00' "
                "function='0x0'/></memballoon>")


def test_balloon_and_rng():
    a = argv_of("<memballoon model='virtio' autodeflate='on' freePageReporting='on'/>"
                "<rng model='virtio'><rate bytes='1024' period='1000'/><backend model='random'>/dev/random</backend></rng>")
    assert device(a, "virtio-balloon-pci") == {"driver": "virtio-balloon-pci", "id": "balloon0",
                                               "deflate-on-oom": True, "free-page-reporting": True}
    assert [json.loads(o) for o in opts(a, "-object")] == [
        {"id": "objrng0", "qom-type": "rng-random", "filename": "/dev/random"}]
    assert device(a, "virtio-rng-pci") == {"driver": "virtio-rng-pci", "rng": "objrng0", "id": "rng0",
                                           "max-bytes": 1024, "period": 1000}
    assert "-device" not in argv_of("<memballoon model='none'/>")
    refused(dom("<rng model='virtio'><backend model='egd' type='udp'><source mode='bind' service='1234'/>"
                "</backend></rng>"), "<backend model='egd'>")


def test_balloon_stats_period_is_on_the_command_line():
    a = argv_of("<memballoon model='virtio'><stats period='10'/></memballoon>")
    assert device(a, "virtio-balloon-pci") == {"driver": "virtio-balloon-pci", "id": "balloon0",
                                               "guest-stats-polling-interval": 10}
    # (period='0' is refused by the schema, as by libvirt's: no <stats> means no polling)
    a = argv_of("<memballoon model='virtio'/>")
    assert device(a, "virtio-balloon-pci") == {"driver": "virtio-balloon-pci", "id": "balloon0"}


# --- features, clock, pm -----------------------------------------------------------------------
def test_features_clock_pm():
    a = argv_of(extra="""<features><acpi/><apic/><pae/><vmport state='off'/>
        <hyperv mode='custom'><relaxed state='on'/><vapic state='on'/><spinlocks state='on' retries='8191'/>
        <vendor_id state='on' value='KVMKVMKVM'/></hyperv></features>
        <clock offset='localtime'><timer name='rtc' tickpolicy='catchup'/><timer name='pit' tickpolicy='delay'/>
        <timer name='hpet' present='no'/><timer name='hypervclock' present='yes'/></clock>
        <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm>""", dtype="kvm")
    assert opts(a, "-machine") == ["q35,usb=off,dump-guest-core=off,vmport=off,hpet=off"]
    assert opts(a, "-cpu") == ["qemu64,hv-relaxed=on,hv-vapic=on,hv-spinlocks=0x1fff,hv-vendor-id=KVMKVMKVM,hv-time=on"]
    assert opts(a, "-rtc") == ["base=localtime,driftfix=slew"]
    assert opts(a, "-global") == ["kvm-pit.lost_tick_policy=delay", "ICH9-LPC.disable_s3=1", "ICH9-LPC.disable_s4=1"]
    # TCG has no kvm-pit; pc uses PIIX4_PM
    a = argv_of(extra="<clock offset='utc'><timer name='pit' tickpolicy='delay'/></clock>"
                      "<pm><suspend-to-mem enabled='yes'/></pm>", machine="pc")
    assert opts(a, "-global") == ["PIIX4_PM.disable_s3=0"]


# --- refusals: nothing is silently ignored -------------------------------------------------
@pytest.mark.parametrize("devs,extra,needle", [
    ("<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>",
     "", "<hostdev"),
    ("<sound model='ich9'/>", "", "<sound"),
    ("<watchdog model='i6300esb'/>", "", "<watchdog"),
    ("<filesystem type='mount'><source dir='/x'/><target dir='x'/></filesystem>", "", "<filesystem"),
    ("", "<memoryBacking><hugepages/></memoryBacking>", "<memoryBacking>"),
    ("", "<features><acpi/><smm state='on'><tseg unit='MiB'>48</tseg></smm></features>", "<tseg>"),
    ("", "<features><gic version='2'/></features>", "<gic"),
    ("", "<cpu mode='custom'><model>qemu64</model><numa><cell cpus='0' memory='1024'/></numa></cpu>", "<numa>"),
    ("", "<clock offset='variable' adjustment='10'/>", "<clock offset='variable'>"),
    ("", "<iothreads>2</iothreads>", "<iothreads>"),
    ("", "<sysinfo type='smbios'><bios><entry name='vendor'>x</entry></bios></sysinfo>", "<sysinfo"),
    ("", "<on_lockfailure>poweroff</on_lockfailure>", "<on_lockfailure>"),
])
def test_unknown_elements_refused_by_name(devs, extra, needle):
    refused(dom(devs, extra=extra), needle)


def test_unknown_attribute_refused():
    d = parse(dom().to_xml().replace("<vcpu>1</vcpu>", "<vcpu cpuset='0-1'>1</vcpu>"))
    refused(d, "<vcpu cpuset='0-1'>")
    refused(dom("<disk type='file' device='disk'><driver name='qemu' type='raw' queues='4'/>"
                "<source file='/a'/><target dev='vda'/></disk>"), "<driver queues='4'>")
    refused(dom(os_extra="<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>"), "<os><loader>")


def test_namespaced_extension_refused():
    d = parse("""<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
      <name>x</name><memory>131072</memory><os><type>hvm</type></os>
      <qemu:commandline><qemu:arg value='-monitor'/></qemu:commandline></domain>""")
    refused(d, "qemu:commandline")


def test_metadata_is_fine():
    a = argv_of(extra="""<title>a title</title><description>words</description>
        <metadata><app:x xmlns:app='http://example.com/app'><app:y z='1'/></app:x></metadata>
        <resource><partition>/machine</partition></resource>""")
    assert "-S" in a


def test_kitchen_sink_fixtures_build():
    for f in DATA.glob("*.xml"):
        a = build_argv(parse(f.read_text()), P)
        assert a[0] == "/usr/bin/qemu-system-x86_64" or a[0] == "qemu-system-x86_64"
