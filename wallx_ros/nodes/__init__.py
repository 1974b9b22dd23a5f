"""Thin rclpy nodes: they translate ROS messages to and from core types and own parameters and QoS."""
