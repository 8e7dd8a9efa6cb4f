"""The Streamlit app's own code: page helpers (`ui`, `components`, `clip_panel`) and app-only logic kept free
of Streamlit so it can be tested (`config`, `views`, `models`, `scores`, `figures`, `clips`, `provenance`,
`machine`). It imports the `seg` library; `seg` never imports it."""
