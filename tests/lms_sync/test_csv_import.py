"""Roster CSV parsing (pure): the seed's format, Canvas and Blackboard exports, and a corpus of bad files,
each giving a clear error with its line number."""

from __future__ import annotations

import codecs

from lms_sync.csv_import import parse_roster

SEED = (
    b"email,name,section\n"
    b"emily.chen@university.edu,Emily Chen,Section A\n"
    b"david.kim@university.edu,David Kim,Section B\n"
)


def test_the_seeds_format_parses_with_line_numbers():
    parsed = parse_roster(SEED)
    assert parsed.ok and parsed.format == "email, name, section"
    assert [(r.line, r.email, r.name, r.section) for r in parsed.rows] == [
        (2, "emily.chen@university.edu", "Emily Chen", "Section A"),
        (3, "david.kim@university.edu", "David Kim", "Section B"),
    ]


def test_column_order_case_spaces_and_crlf_do_not_matter():
    data = b"Name , E-mail,Section\r\n  Emily Chen ,Emily.Chen@University.edu , A \r\n\r\n"
    parsed = parse_roster(data)
    assert parsed.ok and parsed.rows[0].email == "emily.chen@university.edu" and parsed.rows[0].section == "A"


def test_utf8_bom_is_accepted():
    parsed = parse_roster(codecs.BOM_UTF8 + "email,name,section\nzoe@u.edu,Zoë Brontë,A\n".encode())
    assert parsed.ok and parsed.rows[0].name == "Zoë Brontë"


def test_non_utf8_text_is_refused_with_the_line_and_a_fix():
    data = "email,name,section\nzoe@u.edu,Zoe,A\nrene@u.edu,René,B\n".encode("latin-1")
    parsed = parse_roster(data)
    assert not parsed.ok and not parsed.rows
    assert "not UTF-8" in parsed.file_error and "line 3" in parsed.file_error and "CSV UTF-8" in parsed.file_error


def test_canvas_gradebook_export_with_points_possible_and_test_student():
    data = (
        b"Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (123)\n"
        b"    Points Possible,,,,,10.00\n"
        b'"Chen, Emily",1001,E1001,emily.chen@university.edu,CS 229 Section A,9\n'
        b'"Kim, David",1002,D1002,dkim,CS 229 Section B,8\n'
        b'"Student, Test",1003,,,CS 229 Section A,\n'
    )
    parsed = parse_roster(data)
    assert parsed.format == "Canvas gradebook export"
    assert [(r.line, r.name, r.section) for r in parsed.rows] == [(3, "Emily Chen", "CS 229 Section A")]
    assert [(e.line, e.message) for e in parsed.errors] == [(4, "No email address (login “dkim” is not one).")]
    assert [e.line for e in parsed.skipped] == [2, 5]


def test_canvas_sis_users_csv_skips_deleted_users():
    data = (
        b"user_id,login_id,first_name,last_name,full_name,email,status\n"
        b"E1,emily,Emily,Chen,Emily Chen,emily.chen@university.edu,active\n"
        b"S1,sophie,Sophie,Martinez,Sophie Martinez,sophie.martinez@university.edu,deleted\n"
    )
    parsed = parse_roster(data)
    assert parsed.format == "Canvas SIS users.csv" and parsed.ok
    assert [r.name for r in parsed.rows] == ["Emily Chen"] and parsed.skipped[0].line == 3


def test_blackboard_utf16_tab_separated_download():
    text = (
        '"Last Name"\t"First Name"\t"Username"\t"Student ID"\t"Email"\t"Availability"\n'
        '"Chen"\t"Emily"\t"echen"\t"1001"\t"emily.chen@university.edu"\t"Yes"\n'
        '"Kim"\t"David"\t"dkim"\t"1002"\t"david.kim@university.edu"\t"No"\n'
    )
    parsed = parse_roster(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert parsed.format == "Blackboard Learn export" and parsed.ok
    assert [(r.email, r.name) for r in parsed.rows] == [("emily.chen@university.edu", "Emily Chen")]
    assert parsed.skipped[0].line == 3


def test_wrong_columns_are_a_file_error_naming_what_was_found():
    parsed = parse_roster(b"student_number,full_name\n123,Emily Chen\n")
    assert not parsed.rows and "header" in parsed.file_error and "student_number, full_name" in parsed.file_error


def test_a_file_without_header_says_so():
    parsed = parse_roster(b"emily.chen@university.edu,Emily Chen,Section A\n")
    assert "must be a header" in parsed.file_error and "looks like data" in parsed.file_error


def test_duplicates_bad_emails_and_short_rows_are_reported_per_line():
    data = (
        b"email,name,section\n"
        b"emily.chen@university.edu,Emily Chen,A\n"
        b"EMILY.CHEN@university.edu,Emily Again,A\n"
        b"not-an-email,Someone,B\n"
        b"a@b,No Dot,B\n"
        b"david.kim@university.edu,David Kim\n"
        b"sophie@university.edu,,A\n"
        b'"multi\nline"@u.edu,Bad,A\n'
        b"kevin@university.edu,Kevin,B\n"
    )
    parsed = parse_roster(data)
    errors = {e.line: e.message for e in parsed.errors}
    assert errors[3] == "emily.chen@university.edu is already on line 2."
    assert "not a valid email" in errors[4] and "not a valid email" in errors[5]
    assert errors[6] == "Expected 3 columns like the header, found 2."
    assert errors[7] == "The name is empty."
    assert 8 in errors  # the quoted field spans lines 8-9; the error names where the record starts
    assert [r.line for r in parsed.rows] == [2, 10]


def test_empty_and_header_only_files():
    assert parse_roster(b"").file_error == "The file is empty."
    assert parse_roster(b"email,name,section\n").file_error == "The file has a header but no people."


def test_binary_files_are_refused():
    assert parse_roster(b"\x00\x01\x02email\x00").file_error


def test_ten_thousand_rows_parse_with_their_line_numbers():
    """How fast: `python -m bench.csv_import` (a timed assertion here failed under load, and proved nothing)."""
    body = "".join(f"student{n}@university.edu,Student {n},Section {'AB'[n % 2]}\n" for n in range(10_000))
    parsed = parse_roster(("email,name,section\n" + body).encode())
    assert parsed.ok and len(parsed.rows) == 10_000 and parsed.rows[-1].line == 10_001
    assert parsed.rows[4_999].email == "student4999@university.edu" and parsed.rows[4_999].line == 5_001


def test_ten_thousand_rows_with_one_bad_row_near_the_end_report_that_line():
    lines = [f"student{n}@university.edu,Student {n},A" for n in range(10_000)]
    lines[9_997] = "student9997@university,Student 9997,A"
    parsed = parse_roster(("email,name,section\n" + "\n".join(lines)).encode())
    assert [e.line for e in parsed.errors] == [9_999] and len(parsed.rows) == 9_999


def test_semicolon_separated_files_from_european_excel():
    parsed = parse_roster(b"email;name;section\nemily.chen@university.edu;Emily Chen;A\n")
    assert parsed.ok and parsed.rows[0].name == "Emily Chen"
