from classroom.course_paths import course_slug


def test_course_slug_keeps_letters_and_digits_lowercased():
    assert course_slug("CS 229: Machine Learning", 7) == "cs229machinelearning"


def test_course_slug_is_at_most_24_characters():
    assert len(course_slug("A" * 40, 7)) == 24


def test_course_slug_falls_back_to_the_course_id_when_nothing_is_left():
    assert course_slug("— · —", 42) == "course42"
