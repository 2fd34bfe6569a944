"""fermixnet.data"""
