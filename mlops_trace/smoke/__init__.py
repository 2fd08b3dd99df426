"""The CI gate (`smoke`): requests through the serving path, then the doctor pipeline, judged by gates into one exit
code, with its own JUnit/SARIF/JSON renderings and a baseline to compare against."""
