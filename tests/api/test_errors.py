def test_app_answers_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.get_json() == {"detail": "Not found."}
