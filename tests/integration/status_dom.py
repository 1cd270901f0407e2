"""status_dom.py - reads the DOM that headless Chromium dumped of mapq's
status page and prints what test_status_page.sh checks, one NAME=VALUE
line each (values on one line, newlines as spaces).

usage: python3 status_dom.py DUMP.html EXEC_ID ODD_EXEC_ID

Everything it looks for is created by the page's JavaScript from
/api/status: if the script breaks, these come out empty.
"""
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []  # Nodes and strs

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text()
                       for c in self.children)

    def elements(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.elements()

    def find(self, tag=None, cls=None, **attrs):
        """Descendants matching tag, a class and attribute values
        (data_exec= for data-exec)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [e for e in self.elements()
                if (tag is None or e.tag == tag)
                and (cls is None or cls in e.classes())
                and all(e.attrs.get(k) == v for k, v in want.items())]

    def one(self, *args, **kw):
        found = self.find(*args, **kw)
        return found[0] if found else None


class Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def text_of(node, cls):
    if node is None:
        return ""
    found = node.one(cls=cls)
    return " ".join(found.text().split()) if found is not None else ""


def main():
    dump, exec_id, odd_id = sys.argv[1:4]
    b = Builder()
    with open(dump, encoding="utf-8") as f:
        b.feed(f.read())
    doc = b.root
    out = {}
    body = doc.one("body")
    out["rendered"] = body.attrs.get("data-rendered", "") if body else ""
    banner = doc.one(id="banner")
    out["banner_hidden"] = "yes" if banner is not None and \
        "hidden" in banner.attrs else "no"

    table = doc.one("table", id="executions")
    row = table.one("tr", data_exec=exec_id) if table else None
    out["exec_row"] = "yes" if row is not None else "no"
    out["exec_data_status"] = row.attrs.get("data-status", "") if row else ""
    out["exec_status"] = text_of(row, "status")
    out["exec_workflow"] = text_of(row, "workflow")
    node = row.one(cls="node", data_node="sq") if row else None
    out["node_done"] = text_of(node, "done")
    out["node_total"] = text_of(node, "total")
    failed = node.one("li", data_phase="failed") if node else None
    out["node_failed"] = " ".join(failed.text().split()) if failed else ""
    out["node_bar_segments"] = " ".join(
        c[len("seg-"):] for s in node.find(cls="seg") for c in s.classes()
        if c.startswith("seg-")) if node else ""

    box = doc.one(id="failures")
    group = box.one(cls="exec-failures", data_exec=exec_id) if box else None
    items = group.find("li", cls="failure") if group else []
    out["failure_groups"] = str(len(items))
    first = items[0] if items else None
    out["failure_count"] = text_of(first, "count")
    out["failure_error"] = text_of(first, "error")
    err = first.one(cls="error") if first else None
    out["failure_error_elements"] = \
        str(len(list(err.elements()))) if err is not None else "none"
    out["failure_where"] = text_of(first, "where")
    out["failure_note"] = text_of(group, "failures-note")

    agents = doc.one("table", id="agents")
    names = [r.attrs["data-agent"] for r in
             (agents.find("tr") if agents else []) if "data-agent" in r.attrs]
    out["agents"] = ",".join(sorted(names))
    first_agent = agents.one("tr", data_agent=names[0]) \
        if agents and names else None
    out["agent_slots"] = text_of(first_agent, "slots").split(" ")[0]

    odd = table.one("tr", data_exec=odd_id) if table else None
    out["odd_row"] = "yes" if odd is not None else "no"
    out["odd_workflow"] = text_of(odd, "workflow")
    out["odd_node"] = text_of(odd, "node-name")
    # Markup held by data in Redis must stay text: no such elements.
    out["markup_elements"] = str(len(doc.find("b") + doc.find("img") +
                                     doc.find("i")))
    for k, v in out.items():
        print("%s=%s" % (k, v.replace("\n", " ")))


main()
