"""Host figures of the test driver: libvirt's test driver's fixed ones.

* nodecpustats: user 9797400000, system 34678723400000, idle 87264900000,
  iowait 763600000 ns, whatever the CPU (so --percent is 0/0: "-nan%");
* freecell: test:///default has two NUMA cells; libvirt's test driver
  reports their size as their free memory in *bytes* (so virsh shows 2048
  and 4096 "KiB"), and half of that for the node's free memory (3072); a
  node file has no cells;
* capabilities: libvirt 9.0's test capabilities (a node file: no cells);
* sysinfo: the test driver's fixed SMBIOS BIOS entries.
"""
from __future__ import annotations

CPU_STATS = {"user": 9797400000, "system": 34678723400000, "idle": 87264900000, "iowait": 763600000}

SYSINFO = """<sysinfo type='smbios'>
  <bios>
    <entry name='vendor'>LENOVO</entry>
    <entry name='version'>G4ETA1WW (2.61 )</entry>
    <entry name='date'>05/07/2014</entry>
    <entry name='release'>2.61</entry>
  </bios>
</sysinfo>
"""

# (size, "free") per cell of test:///default, as libvirt's test driver reports them
_DEFAULT_CELLS = [(2097152, 1048576), (4194304, 2097152)]

_CAPABILITIES = """<capabilities>

  <host>
    <cpu>
      <arch>i686</arch>
      <features>
        <pae/>
        <nonpae/>
      </features>
      <pages unit='KiB' size='4'/>
      <pages unit='KiB' size='8'/>
      <pages unit='KiB' size='2048'/>
      <pages unit='KiB' size='1048576'/>
    </cpu>
    <power_management/>
    <iommu support='no'/>
    <topology>
      <cells num='2'>
@CELLS@      </cells>
    </topology>
    <secmodel>
      <model>testSecurity</model>
      <doi></doi>
    </secmodel>
  </host>

  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'>
      <wordsize>32</wordsize>
      <emulator>/usr/bin/test-hv</emulator>
      <domain type='test'/>
    </arch>
    <features>
      <pae/>
      <nonpae/>
    </features>
  </guest>

  <guest>
    <os_type>xen</os_type>
    <arch name='i686'>
      <wordsize>32</wordsize>
      <emulator>/usr/bin/test-hv</emulator>
      <domain type='test'/>
    </arch>
    <features>
      <pae/>
      <nonpae/>
    </features>
  </guest>

</capabilities>
"""


def _cell(i: int, kib: int, page_kib: int) -> str:
    """One NUMA cell of test:///default: 8 CPUs on socket ``i``, ``kib`` of
    memory, 524288 pages of ``page_kib``."""
    cpus = "".join(f"            <cpu id='{8 * i + c}' socket_id='{i}' die_id='0' core_id='{c}'"
                   f" siblings='{8 * i + c}'/>\n" for c in range(8))
    return (f"        <cell id='{i}'>\n          <memory unit='KiB'>{kib}</memory>\n"
            f"          <pages unit='KiB' size='{page_kib}'>524288</pages>\n"
            "          <pages unit='KiB' size='2048'>0</pages>\n"
            "          <pages unit='KiB' size='1048576'>0</pages>\n"
            f"          <cpus num='8'>\n{cpus}          </cpus>\n        </cell>\n")


_CAPABILITIES = _CAPABILITIES.replace("@CELLS@", _cell(0, 2097152, 4) + _cell(1, 4194304, 8))


def node_cpu_stats(cpu: int | None = None) -> dict:
    return dict(CPU_STATS)


def cells(default: bool) -> list[tuple[int, int]]:
    return list(_DEFAULT_CELLS) if default else []


def capabilities(default: bool) -> str:
    if default:
        return _CAPABILITIES
    start = _CAPABILITIES.index("      <cells num='2'>")
    end = _CAPABILITIES.index("      </cells>")
    return _CAPABILITIES[:start] + "      <cells num='0'>\n" + _CAPABILITIES[end:]
