"""The initial objects of ``test:///default``, as libvirt's test driver has
them, written as a node file so the default and ``test:///PATH.xml`` share
one loader."""

DEFAULT_NODE_XML = """\
<node>
  <domain type='test'>
    <name>test</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
    <memory>8388608</memory>
    <currentMemory>2097152</currentMemory>
    <vcpu>2</vcpu>
    <os>
      <type>hvm</type>
    </os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/guest/diskimage1'/>
        <target dev='vda' bus='virtio'/>
        <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
      </disk>
      <interface type='network'>
        <mac address='aa:bb:cc:dd:ee:ff'/>
        <source network='default'/>
        <target dev='testnet0'/>
        <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
      </interface>
      <memballoon model='virtio'>
        <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
      </memballoon>
    </devices>
  </domain>
  <network>
    <name>default</name>
    <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
    <forward mode='nat'/>
    <bridge name='virbr0' stp='on' delay='0'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp>
        <range start='192.168.122.2' end='192.168.122.254'/>
      </dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default-pool</name>
    <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
    <target>
      <path>/default-pool</path>
    </target>
  </pool>
</node>
"""


def _domain_texts(node: str) -> list[str]:
    out, i = [], 0
    while (start := node.find("<domain", i)) >= 0:
        i = node.index("</domain>", start) + len("</domain>")
        out.append(node[start:i])
    return out


# What a DomainRecord takes from each domain above, so that a one-shot
# list/dominfo/domstate parses no XML (node.LazyDomainDef); a test checks
# these against the parsed definitions.
_SUMMARIES = [
    {"name": "test", "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f", "title": "", "os_type": "hvm",
     "vcpus": 2, "max_vcpus": 2, "max_memory_kib": 8388608, "memory_kib": 2097152, "runstate": 1},
]
DEFAULT_DOMAINS = list(zip(_domain_texts(DEFAULT_NODE_XML), _SUMMARIES, strict=True))
