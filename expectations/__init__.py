"""Great Expectations suites (reviewable JSON files) and the code that runs them.

Great Expectations reports failing values, so it never sees a personal one:
`derive.validation_frame` turns personal fields into flags first.
"""
