"""Writes the export fixtures in this folder the way each PowerShell writes them.

Run from the repository root: ``python3 tests/data/exports/generate.py``. The files are
committed; this script documents how each one is shaped:

- ``ps51-type-utf8bom.csv``: Windows PowerShell 5.1 ``Export-Csv -Encoding UTF8``: BOM, a
  ``#TYPE`` first line, every field double-quoted, CRLF.
- ``ps51-unicode.csv``: 5.1 ``Export-Csv -Encoding Unicode``: UTF-16 LE with BOM, ``#TYPE``.
- ``ps7.csv``: PowerShell 7 ``Export-Csv``: UTF-8 without BOM, no ``#TYPE``, LF.
- ``excel-semicolon.csv``: re-saved by Excel with a ``;`` list separator, header case changed,
  quotes only where needed.
- ``ps51.xml``: 5.1 ``Export-Clixml`` of ``Get-Mailbox`` objects: UTF-16 LE with BOM, ``TN``
  defined once and referenced by ``TNRef``, GUIDs as ``<G>``, ``<Nil>`` and ``_x000D__x000A_``
  escapes.
- ``ps7.xml``: 7 ``Export-Clixml`` of the export script's objects: UTF-8, GUIDs as strings.
- ``ps51.json``: 5.1 ``ConvertTo-Json | Out-File``: UTF-16 LE with BOM, ``\\u0027``-style escapes.
- ``ps7-single.json``: 7 ``ConvertTo-Json`` of a single mailbox (an object, not an array).
- ``unjoined.csv``: ``EmailAddresses`` exported without joining.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
COLUMNS = ["PrimarySmtpAddress", "Alias", "SamAccountName", "FirstName", "LastName", "DisplayName", "Name",
           "ExchangeGuid", "ArchiveGuid", "LegacyExchangeDN", "EmailAddresses", "RecipientTypeDetails"]
LDN = "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn="
ZERO = "00000000-0000-0000-0000-000000000000"

#: Names as directories hold them, hostile to careless quoting.
MAILBOXES = [
    {
        "PrimarySmtpAddress": "user01@wingtiptoys.kr", "Alias": "user01", "SamAccountName": "$USER01",
        "FirstName": "", "LastName": "", "DisplayName": "x'; Remove-Mailbox -Identity * ; '",
        "Name": "x'; Remove-Mailbox -Identity * ; '", "ExchangeGuid": "6f1c8d3a-2b4e-4f5a-9c7d-1e2f3a4b5c6d",
        "ArchiveGuid": ZERO, "LegacyExchangeDN": LDN + "6f1c8d3a2b4e4f5a9c7d1e2f3a4b5c6d-user01",
        "EmailAddresses": ["SMTP:user01@wingtiptoys.kr", "smtp:user01@M365x47686041.onmicrosoft.com"],
        "RecipientTypeDetails": "UserMailbox",
    },
    {
        "PrimarySmtpAddress": "renee@wingtiptoys.kr", "Alias": "renee", "SamAccountName": "$RENEE",
        "FirstName": "Renée", "LastName": "’Dollar’", "DisplayName": "Renée ’Dollar’ $(Get-Secret) `n # <# ‘‚‛",
        "Name": "Renée ’Dollar’", "ExchangeGuid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "ArchiveGuid": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "LegacyExchangeDN": LDN + "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d-renee",
        "EmailAddresses": ["SMTP:renee@wingtiptoys.kr", "smtp:renee@M365x47686041.onmicrosoft.com",
                           "X500:/o=Wingtip Legacy/ou=First Administrative Group/cn=Recipients/cn=renee"],
        "RecipientTypeDetails": "UserMailbox",
    },
    {
        "PrimarySmtpAddress": "support@wingtiptoys.kr", "Alias": "support", "SamAccountName": "$SUPPORT",
        "FirstName": "", "LastName": "", "DisplayName": "고객지원 \"Support\" “24/7” 🙂\r\nsecond line",
        "Name": "고객지원", "ExchangeGuid": "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", "ArchiveGuid": ZERO,
        "LegacyExchangeDN": LDN + "7b8c9d0e1f2a4b3c8d4e5f6a7b8c9d0e-support",
        "EmailAddresses": ["SMTP:support@wingtiptoys.kr", "smtp:help@wingtip.co.kr",
                           "smtp:support@M365x47686041.onmicrosoft.com"],
        "RecipientTypeDetails": "SharedMailbox",
    },
]


def flat(mailbox: dict[str, object]) -> list[str]:
    return [";".join(v) if isinstance(v, list) else str(v) for v in (mailbox[c] for c in COLUMNS)]


def csv_text(*, delimiter: str = ",", quote_all: bool = True, newline: str = "\r\n",
             header: list[str] | None = None, type_line: bool = False, rows: list[list[str]] | None = None) -> str:
    out = io.StringIO()
    if type_line:
        out.write("#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox" + newline)
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline,
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header or COLUMNS)
    writer.writerows(rows if rows is not None else [flat(m) for m in MAILBOXES])
    return out.getvalue()


def clixml_string(value: str) -> str:
    """PowerShell's CLIXML string escaping: XML escapes, control characters as _xHHHH_."""
    out = []
    for ch in value:
        if ch == "_":
            out.append("_x005F_")
        elif ord(ch) < 0x20 and ch not in "\t":
            out.append(f"_x{ord(ch):04X}_")
        else:
            out.append(ch)
    return escape("".join(out))


def clixml(*, guid_tag: str, type_name: str, list_type: str) -> str:
    lines = ['<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">']
    ref = 0
    for index, mailbox in enumerate(MAILBOXES):
        lines.append(f'  <Obj RefId="{ref}">')
        obj_ref = ref
        ref += 1
        if index == 0:
            lines += ['    <TN RefId="0">', f"      <T>{type_name}</T>", "      <T>System.Object</T>", "    </TN>"]
        else:
            lines.append('    <TNRef RefId="0" />')
        lines.append("    <MS>" if guid_tag == "S" else "    <Props>")
        for column in COLUMNS:
            value = mailbox[column]
            if isinstance(value, list):
                lines.append(f'      <Obj N="{column}" RefId="{ref}">')
                ref += 1
                if index == 0 and column == "EmailAddresses":
                    lines += ['        <TN RefId="1">', f"          <T>{list_type}</T>", "          <T>System.Object</T>",
                              "        </TN>"]
                else:
                    lines.append('        <TNRef RefId="1" />')
                lines.append("        <LST>")
                lines += [f"          <S>{clixml_string(item)}</S>" for item in value]
                lines += ["        </LST>", "      </Obj>"]
            elif value == "":
                lines.append(f'      <Nil N="{column}" />')
            elif column in ("ExchangeGuid", "ArchiveGuid"):
                lines.append(f'      <{guid_tag} N="{column}">{value}</{guid_tag}>')
            else:
                lines.append(f'      <S N="{column}">{clixml_string(str(value))}</S>')
        lines.append("    </MS>" if guid_tag == "S" else "    </Props>")
        lines.append("  </Obj>")
        del obj_ref
    lines.append("</Objs>")
    return "\r\n".join(lines)


def ps51_json(value: object) -> str:
    """ConvertTo-Json in 5.1: four-space indent and HTML-sensitive characters escaped."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    for ch, code in (("'", "\\u0027"), ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, code)
    return text.replace("\n", "\r\n")


def main() -> None:
    (HERE / "ps51-type-utf8bom.csv").write_bytes(csv_text(type_line=True).encode("utf-8-sig"))
    (HERE / "ps51-unicode.csv").write_bytes(csv_text(type_line=True).encode("utf-16"))
    (HERE / "ps7.csv").write_bytes(csv_text(newline="\n").encode("utf-8"))
    header = [c.replace("PrimarySmtpAddress", "PrimarySMTPAddress").replace("LegacyExchangeDN", "legacyexchangedn")
              for c in COLUMNS]
    (HERE / "excel-semicolon.csv").write_bytes(
        csv_text(delimiter=";", quote_all=False, header=header).encode("utf-8-sig"))
    (HERE / "ps51.xml").write_bytes(clixml(
        guid_tag="G", type_name="Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox",
        list_type="Deserialized.Microsoft.Exchange.Data.ProxyAddressCollection").encode("utf-16"))
    (HERE / "ps7.xml").write_bytes(clixml(
        guid_tag="S", type_name="System.Management.Automation.PSCustomObject",
        list_type="System.Object[]").encode("utf-8"))
    objects = [{c: m[c] for c in COLUMNS} for m in MAILBOXES]
    (HERE / "ps51.json").write_bytes(ps51_json(objects).encode("utf-16"))
    (HERE / "ps7-single.json").write_bytes(json.dumps(objects[1], indent=2, ensure_ascii=False).encode("utf-8"))
    rows = [flat(m) for m in MAILBOXES]
    rows[1][COLUMNS.index("EmailAddresses")] = "System.Collections.ArrayList"
    (HERE / "unjoined.csv").write_bytes(csv_text(type_line=True, rows=rows).encode("utf-8-sig"))


if __name__ == "__main__":
    main()
