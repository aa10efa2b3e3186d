"""A real StatusNotifierItem host on the test's session bus, and a dbusmenu reader.

KDE Plasma, GNOME with the AppIndicator extension and XFCE show tray icons through
StatusNotifierItem (D-Bus) with the menu exported over com.canonical.dbusmenu, not XEmbed. Qt
uses SNI when `org.kde.StatusNotifierWatcher` runs with a host registered: here
`status-notifier-watcher` and `gtk-sni-tray-standalone` (a GTK panel on the X display that shows
the items and opens their menus), both from Debian. Tests read the menu over D-Bus with jeepney
(which `keyring` already depends on) the way a host does: AboutToShow, then GetLayout.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from jeepney import DBusAddress, DBusErrorResponse, new_method_call
from jeepney.io.blocking import DBusConnection, open_dbus_connection
from jeepney.wrappers import unwrap_msg

from support.desktop import Window, stop_process, wait_for, windows
from support.secret_service import name_owner_pid

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_PATH = "/StatusNotifierItem"
HOST_CLASS = '"gtk-sni-tray-standalone"'


def require_sni_host() -> None:
    for tool in ("status-notifier-watcher", "gtk-sni-tray-standalone"):
        if shutil.which(tool) is None:
            pytest.skip(
                f"SNI tests need `{tool}` (apt-get install haskell-status-notifier-item-utils "
                "haskell-gtk-sni-tray-utils)"
            )


@dataclass
class MenuNode:
    id: int
    props: dict[str, Any]
    children: list[MenuNode] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.props.get("label", ""))

    @property
    def is_submenu(self) -> bool:
        return self.props.get("children-display") == "submenu"

    def find(self, label: str) -> MenuNode:
        for child in self.children:
            if child.label == label:
                return child
        raise AssertionError(f"no row {label!r} in {[c.label for c in self.children]}")


def _node(raw: tuple[int, dict[str, tuple[str, Any]], list[tuple[str, Any]]]) -> MenuNode:
    node_id, props, children = raw
    return MenuNode(node_id, {k: v[1] for k, v in props.items()}, [_node(c[1]) for c in children])


class Bus:
    """Blocking calls on the session bus."""

    def __init__(self) -> None:
        self.conn: DBusConnection = open_dbus_connection(bus="SESSION")

    def close(self) -> None:
        self.conn.close()

    def call(self, address: DBusAddress, method: str, signature: str, body: tuple[Any, ...]) -> Any:
        reply = self.conn.send_and_get_reply(
            new_method_call(address, method, signature, body), timeout=10
        )
        return unwrap_msg(reply)  # raises DBusErrorResponse for an error reply

    def prop(self, service: str, path: str, interface: str, name: str) -> Any:
        props = DBusAddress(path, bus_name=service, interface="org.freedesktop.DBus.Properties")
        return self.call(props, "Get", "ss", (interface, name))[0][1]

    def items(self) -> list[str]:
        return list(self.prop(WATCHER, WATCHER_PATH, WATCHER, "RegisteredStatusNotifierItems"))


@dataclass
class SniMenu:
    """An item's menu as a host sees it."""

    bus: Bus
    service: str
    path: str

    @property
    def _address(self) -> DBusAddress:
        return DBusAddress(self.path, bus_name=self.service, interface="com.canonical.dbusmenu")

    def about_to_show(self, node_id: int) -> None:
        self.bus.call(self._address, "AboutToShow", "i", (node_id,))

    def layout(self, node_id: int = 0, depth: int = -1) -> MenuNode:
        _revision, raw = self.bus.call(self._address, "GetLayout", "iias", (node_id, depth, []))
        return _node(raw)

    def click(self, node_id: int) -> None:
        self.bus.call(self._address, "Event", "isvu", (node_id, "clicked", ("i", 0), 0))


@contextmanager
def sni_host() -> Iterator[Window]:
    """status-notifier-watcher + gtk-sni-tray-standalone; yields the host's panel window."""
    require_sni_host()
    procs: list[subprocess.Popen[bytes]] = []
    bus = Bus()
    try:
        procs.append(
            subprocess.Popen(
                ["status-notifier-watcher"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        wait_for(lambda: name_owner_pid(WATCHER) == procs[0].pid, 10, "the SNI watcher")
        procs.append(
            subprocess.Popen(
                ["gtk-sni-tray-standalone"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

        def host_registered() -> bool:
            try:
                return bool(
                    bus.prop(WATCHER, WATCHER_PATH, WATCHER, "IsStatusNotifierHostRegistered")
                )
            except DBusErrorResponse:  # the watcher has its name but not yet its object
                return False

        wait_for(host_registered, 10, "the SNI host to register")
        panel = wait_for(
            lambda: next(
                (w for w in windows() if HOST_CLASS in w.wm_class and w.width > 100), None
            ),
            10,
            "the SNI host's panel",
        )
        assert isinstance(panel, Window)
        yield panel
    finally:
        bus.close()
        for proc in reversed(procs):
            stop_process(proc)
