"""What a FreeSWITCH node holds besides its calls, for the read-only `api`
commands `tollgate doctor` sends: its version, modules, global variables,
files, and its dialplan as `xml_locate` returns it.

By default the node is set up as freeswitch-conf/ says: the `default` context
holds the shipped 90_tollgate.xml (pre-processed: `$${var}` replaced by the
X-PRE-PROCESS values, as FreeSWITCH does when it loads the file), and the
prompts are where the controller looks for them. Tests change one thing at a
time to get a broken node.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent.parent / "freeswitch-conf"
INBOUND_DIALPLAN = CONF / "dialplan" / "default" / "90_tollgate.xml"
SOCKET_DIALPLAN = CONF / "socket-mode" / "dialplan" / "default" / "90_tollgate.xml"
MODULES = frozenset({"mod_commands", "mod_dptools", "mod_dialplan_xml", "mod_event_socket", "mod_hash",
                     "mod_sndfile", "mod_sofia", "mod_loopback"})


@dataclass
class NodeConfig:
    version: str = "1.10.11-release"
    # context -> the text of the files FreeSWITCH includes in it (each an <include>)
    dialplan: dict[str, list[str]] = field(default_factory=lambda: {"default": [INBOUND_DIALPLAN.read_text()]})
    modules: frozenset[str] = MODULES
    globals: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # path prefixes file_exists reports missing (files not installed there)

    def file_exists(self, path: str) -> bool:
        return os.path.exists(path) and not any(path.startswith(p) for p in self.absent)

    def context_xml(self, name: str) -> str | None:
        """`xml_locate dialplan context name <name>`: the context element, or None."""
        if name not in self.dialplan:
            return None
        context = ET.Element("context", {"name": name})
        for text in self.dialplan[name]:
            variables = dict(re.findall(r'<X-PRE-PROCESS\s+cmd="set"\s+data="([^=]+)=([^"]*)"', text))
            expanded = re.sub(r"\$\$\{([^}]+)\}", lambda m: variables.get(m.group(1), ""), text)
            for element in ET.fromstring(expanded):
                if element.tag != "X-PRE-PROCESS":
                    context.append(element)
        return ET.tostring(context, encoding="unicode")
